using Microsoft.Extensions.FileProviders;

namespace CfOrch.Web.Hosting;

/// <summary>Serves /wwwroot-assets (the app's CSS, JS, logo and favicon), copied next to the app at build and publish.</summary>
public static class OwnAssets
{
    public const string FolderName = "wwwroot-assets";

    public static IApplicationBuilder UseOwnAssets(this IApplicationBuilder app)
    {
        var root = Path.Combine(AppContext.BaseDirectory, FolderName);
        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"The app's static assets are missing: {root} (build or publish CfOrch.Web again).");
        }

        return app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = new PhysicalFileProvider(root),
            OnPrepareResponse = ctx => ctx.Context.Response.Headers.CacheControl = "public, max-age=300",
        });
    }
}
