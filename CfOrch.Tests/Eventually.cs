using System.Diagnostics;

namespace CfOrch.Tests;

/// <summary>Waits (on the real clock, bounded) for what another thread makes true and nothing announces.</summary>
public static class Eventually
{
    /// <summary>The default bound: long enough for a busy CI machine, short enough to fail a stuck test promptly.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    /// <summary>Looks every 10 ms until <paramref name="condition"/> holds; fails the test, naming <paramref name="what"/>, after <paramref name="deadline"/>.</summary>
    public static async Task TrueAsync(Func<bool> condition, string what, TimeSpan? deadline = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var bound = deadline ?? Deadline;
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > bound)
            {
                Assert.Fail($"waited {bound.TotalSeconds:0} s for {what}");
            }

            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }
}
