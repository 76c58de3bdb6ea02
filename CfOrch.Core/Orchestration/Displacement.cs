using CfOrch.Core.Instances;

namespace CfOrch.Core.Orchestration;

/// <summary>What a start evicted, started again once that start is undone or failed for good — on this node or an agent's.</summary>
public static class Displacement
{
    /// <summary>
    /// Starts each of <paramref name="displaced"/> with <paramref name="start"/> (true: started; false: it runs again
    /// already) and says what became of each, in the words a refusal ends with.
    /// </summary>
    public static async Task<string> StartAgainAsync(IReadOnlyList<Displaced> displaced, Func<Displaced, Task<bool>> start)
    {
        ArgumentNullException.ThrowIfNull(displaced);
        ArgumentNullException.ThrowIfNull(start);
        var said = new List<string>();
        foreach (var one in displaced)
        {
            var name = one.Key.Service;
            try
            {
                said.Add(await start(one) ? $"{name}, stopped to make room for it, is starting again" : $"{name}, stopped to make room for it, runs again already");
            }
            catch (OrchestrationException ex)
            {
                said.Add($"{name}, stopped to make room for it, could not be started again: {ex.Message}");
            }
        }

        return string.Join("; ", said);
    }
}
