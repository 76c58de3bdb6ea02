using System.Xml.Linq;
using CfOrch.Core.Storage;
using Microsoft.AspNetCore.DataProtection.Repositories;

namespace CfOrch.Web.Security;

/// <summary>
/// The data-protection keys (they sign the sign-in cookies and anti-forgery tokens) in <c>{DataDir}/keys</c>: a 0700
/// directory of 0600 files, so that no other user of the machine can read them and forge a sign-in.
/// </summary>
public sealed class PrivateKeyRepository : FileSystemXmlRepository
{
    public PrivateKeyRepository(DirectoryInfo directory, ILoggerFactory loggerFactory)
        : base(Prepare(directory), loggerFactory)
    {
    }

    public override void StoreElement(XElement element, string friendlyName)
    {
        base.StoreElement(element, friendlyName);
        TightenAll(Directory);
    }

    private static DirectoryInfo Prepare(DirectoryInfo directory)
    {
        PrivateFiles.CreateDirectory(directory.FullName);
        TightenAll(directory);
        return directory;
    }

    private static void TightenAll(DirectoryInfo directory)
    {
        foreach (var file in directory.EnumerateFiles("*.xml"))
        {
            PrivateFiles.TightenFile(file.FullName);
        }
    }
}
