using CfOrch.Core.Instances;

namespace CfOrch.Tests;

/// <summary>Instance snapshots for tests that need one without an engine around it.</summary>
public static class TestInstances
{
    /// <summary>A managed instance of <paramref name="service"/>, running on GPU 0 of node <c>local</c> since the epoch.</summary>
    public static InstanceSnapshot Running(string service) => new()
    {
        Key = new InstanceKey(service, "local", 0),
        Origin = InstanceOrigin.Managed,
        State = InstanceState.Running,
        Url = "http://127.0.0.1:9000",
        HealthPath = "/health",
        BudgetMb = 1000,
        Since = DateTimeOffset.UnixEpoch,
        StateSince = DateTimeOffset.UnixEpoch,
    };
}
