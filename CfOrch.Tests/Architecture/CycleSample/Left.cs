namespace CfOrch.Tests.Architecture.CycleSample.Left;

/// <summary>Half of a deliberate namespace cycle that <see cref="ArchitectureTests"/> must find: it uses Right only in a lambda.</summary>
internal static class LeftSide
{
    public static Func<int> Later() => () => Right.RightSide.Value() + 1;

    public static int Value() => 1;
}
