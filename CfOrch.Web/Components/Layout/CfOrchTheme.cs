using MudBlazor;

namespace CfOrch.Web.Components.Layout;

/// <summary>cf-orch's light and dark palettes. System fonts only: the dashboard runs on a LAN without internet.</summary>
public static class CfOrchTheme
{
    public static MudTheme Theme { get; } = new()
    {
        PaletteLight = new PaletteLight
        {
            Primary = "#2f6fdf",
            Secondary = "#7a4fd6",
            Tertiary = "#0f9d8a",
            AppbarBackground = "#14213d",
            AppbarText = "#ffffff",
            Background = "#f5f7fb",
            DrawerBackground = "#ffffff",
        },
        PaletteDark = new PaletteDark
        {
            Primary = "#6ea0ff",
            Secondary = "#a98bff",
            Tertiary = "#3cc7b3",
            AppbarBackground = "#0d1526",
            Background = "#111827",
            Surface = "#1a2233",
            DrawerBackground = "#151d2c",
        },
        Typography = new Typography
        {
            Default = new DefaultTypography
            {
                FontFamily = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
            },
        },
        LayoutProperties = new LayoutProperties { DefaultBorderRadius = "8px" },
    };
}
