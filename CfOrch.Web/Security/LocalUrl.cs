namespace CfOrch.Web.Security;

/// <summary>Where a sign-in may send the browser afterwards: a path of this site, never another site.</summary>
public static class LocalUrl
{
    /// <summary>
    /// <paramref name="url"/> when it is a local path (<c>/services?x=1</c>), else <c>/</c>. Refused: absolute URLs,
    /// protocol-relative ones (<c>//host</c>), and anything with a backslash or a control character (browsers read
    /// <c>/\host</c> as <c>//host</c>).
    /// </summary>
    public static string OrRoot(string? url)
    {
        if (string.IsNullOrEmpty(url) || url[0] != '/' || url.Length > 2048)
        {
            return "/";
        }

        if (url.Length > 1 && url[1] is '/' or '\\')
        {
            return "/";
        }

        foreach (var c in url)
        {
            if (c == '\\' || char.IsControl(c) || char.IsWhiteSpace(c))
            {
                return "/";
            }
        }

        return url;
    }
}
