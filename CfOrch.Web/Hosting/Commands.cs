using CfOrch.Core.Configuration;

namespace CfOrch.Web.Hosting;

/// <summary>Command-line tools of the app itself (instead of starting it).</summary>
public static class Commands
{
    /// <summary>
    /// <c>hash-password [password]</c>: prints a hash for <c>CfOrch:Auth:AdminPasswordHash</c> (the password from the
    /// argument, or one line of standard input so it stays out of the shell history). Returns null when
    /// <paramref name="args"/> is not a command.
    /// </summary>
    public static int? Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
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
}
