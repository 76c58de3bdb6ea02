using CfOrch.Web.Hosting;

if (Commands.Run(args) is { } exitCode)
{
    return exitCode;
}

args = Commands.Translate(args);

// appsettings.json travels with the app, so the content root is the app's folder, wherever it is started from.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddCfOrchWeb();

var app = builder.Build();
return await app.RunCfOrchAsync();

/// <summary>The entry point; public so that test hosts can start it.</summary>
public partial class Program;
