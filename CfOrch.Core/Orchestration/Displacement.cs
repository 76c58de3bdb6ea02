using CfOrch.Core.Instances;
using CfOrch.Core.Profiles;

namespace CfOrch.Core.Orchestration;

/// <summary>What a start evicted, started again once that start is undone or failed for good — on this node or an agent's.</summary>
public static class Displacement
{
    /// <summary>
    /// Whether a failed start of <paramref name="profile"/> gives back the room it took from <paramref name="displaced"/>:
    /// it evicted something, and no automatic restart (<c>restart: on-failure</c>) will try it again and need that room.
    /// </summary>
    public static bool GivesRoomBack(ServiceProfile profile, IReadOnlyList<Displaced> displaced)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(displaced);
        return displaced.Count > 0 && profile.Managed?.Restart == RestartPolicy.Never;
    }

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
