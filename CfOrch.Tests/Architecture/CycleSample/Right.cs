namespace CfOrch.Tests.Architecture.CycleSample.Right;

/// <summary>The other half of the deliberate cycle: it uses Left only inside a method body.</summary>
internal static class RightSide
{
    public static int Value() => 2;

    public static int Twice() => Left.LeftSide.Value() * 2;
}
