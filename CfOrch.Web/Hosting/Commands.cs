using CfOrch.Core.Configuration;

namespace CfOrch.Web.Hosting;

/// <summary>Command-line tools of the app itself (instead of starting it).</summary>
public static class Commands
{
    /// <summary>
    /// <c>agent --coordinator URL [--advertise URL] [other options]</c>: the arguments of an agent as configuration keys
    /// (<c>CfOrch:Role=agent</c>, <c>CfOrch:Agent:Coordinator</c>, <c>CfOrch:Agent:AdvertiseUrl</c>); any other arguments as they are.
    /// </summary>
    public static string[] Translate(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length == 0 || args[0] != "agent")
        {
            return args;
        }

        var result = new List<string> { $"--{CfOrchOptions.SectionName}:Role={CfOrchOptions.RoleAgent}" };
        for (var i = 1; i < args.Length; i++)
        {
            var key = args[i] switch
            {
                "--coordinator" => "Agent:Coordinator",
                "--advertise" => "Agent:AdvertiseUrl",
                _ => null,
            };
            if (key is not null && i + 1 < args.Length)
            {
                result.Add($"--{CfOrchOptions.SectionName}:{key}={args[++i]}");
            }
            else
            {
                result.Add(args[i]);
            }
        }

        return [.. result];
    }

    /// <summary>
    /// <c>hash-password [password]</c>: prints a hash for <c>CfOrch:Auth:AdminPasswordHash</c> (the password from the
    /// argument, or one line of standard input so it stays out of the shell history). Returns null when
    /// <paramref name="args"/> is not a command.
    /// </summary>
    public static int? Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length > 0 && args[0] == "check-db")
        {
            return CheckDatabase(args);
        }

        if (args.Length == 0 || args[0] != "hash-password")
        {
            return null;
        }

        var password = args.Length > 1 ? args[1] : Console.In.ReadLine();
        if (string.IsNullOrEmpty(password) || password.Length < 8)
        {
            Console.Error.WriteLine("hash-password: give a password of at least 8 characters (as an argument, or on standard input)");
            return 2;
        }

        Console.WriteLine(PasswordHash.Create(password));
        return 0;
    }

    /// <summary>
    /// <c>check-db [database file]</c>: runs SQLite's full <c>integrity_check</c> on the database (by default the one in
    /// <c>CfOrch__DataDir</c>, else <c>data/</c>) and prints what it found; exit code 0 when it is sound, 1 when not.
    /// Run it while cf-orch is stopped.
    /// </summary>
    private static int CheckDatabase(string[] args)
    {
        var path = args.Length > 1
            ? Path.GetFullPath(args[1])
            : Path.Combine(Path.GetFullPath(Environment.GetEnvironmentVariable("CfOrch__DataDir") is { Length: > 0 } dir ? dir : "data"), Data.DataServiceCollectionExtensions.DatabaseFileName);
        if (!File.Exists(path))
        {
            Console.Error.WriteLine($"check-db: {path} does not exist (give the database file as an argument, or set CfOrch__DataDir)");
            return 2;
        }

        try
        {
            if (Data.DatabaseCheck.Problem(path, full: true) is { } problem)
            {
                Console.WriteLine($"{path}: damaged: {problem}");
                return 1;
            }
        }
        catch (Data.DataDirectoryException ex)
        {
            Console.Error.WriteLine($"check-db: {ex.Message}");
            return 2;
        }

        Console.WriteLine($"{path}: ok");
        return 0;
    }
}
