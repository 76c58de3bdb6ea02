using CfOrch.StandIns;

if (args is ["--help"] or ["-h"])
{
    Console.WriteLine(StandInOptions.Usage);
    return 0;
}

StandInOptions options;
try
{
    options = StandInOptions.Parse(args);
}
catch (StandInUsageException e)
{
    await Console.Error.WriteLineAsync($"CfOrch.StandIns: {e.Message} (--help shows the usage)");
    return 2;
}

return await StandInHost.RunAsync(options);
