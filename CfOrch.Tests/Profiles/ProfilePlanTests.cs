using CfOrch.Core.Profiles;

namespace CfOrch.Tests.Profiles;

/// <summary>What applying a new version of the active profile will do, as the editor and the API list it before a save.</summary>
public sealed class ProfilePlanTests
{
    private static GpuProfile Parse(string services) => ProfileParser.Parse($"""
        schema_version: 1
        name: plan
        services:
        {services}
        """, "plan.yaml");

    private static readonly Dictionary<string, int> Ports = new(StringComparer.Ordinal) { ["whisper"] = 9001, ["tts"] = 9002, ["embed"] = 9003 };

    private static string Service(string name, int mb = 1000, bool alwaysOn = false, string type = "process", string restart = "") => $$"""
          {{name}}:
            max_mb: {{mb}}
            priority: 2
            always_on: {{(alwaysOn ? "true" : "false")}}
            managed:
              type: {{type}}
              {{(type == "process" ? "exec_path: /usr/bin/whisper-server" : "image: example/whisper:1")}}
              port: {{Ports[name]}}
              host_port: {{Ports[name]}}
              {{restart}}

        """;

    private static string Describe(IEnumerable<ProfileChange> changes) =>
        string.Join(" | ", changes.Select(c => $"{c.Service} {c.Kind}{(c.AffectsRunningInstance ? " (running)" : "")}: {c.Description}"));

    [Fact]
    public void An_unchanged_profile_changes_nothing()
    {
        Assert.Empty(ProfilePlan.Compare(Parse(Service("whisper")), Parse(Service("whisper")), [TestInstances.Running("whisper")]));
    }

    [Fact]
    public void A_budget_change_of_a_running_service_waits_for_its_restart_and_a_removed_one_keeps_running()
    {
        var changes = ProfilePlan.Compare(Parse(Service("whisper") + Service("tts")), Parse(Service("whisper", 1500)), [TestInstances.Running("whisper"), TestInstances.Running("tts")]);

        Assert.Equal(
            "whisper BudgetChanged (running): budget 1000 → 1500 MB; it keeps its current lease until it is restarted"
            + " | tts Removed (running): tts leaves the profile; it keeps running until you stop it",
            Describe(changes));
    }

    [Fact]
    public void A_new_service_starts_nothing_unless_it_is_always_on()
    {
        var changes = ProfilePlan.Compare(Parse(Service("whisper")), Parse(Service("whisper") + Service("tts") + Service("embed", alwaysOn: true)), []);

        Assert.Equal(
            "embed Added: new service embed (1000 MB, priority 2)"
            + " | embed Starts: always_on: embed is started now"
            + " | tts Added: new service tts (1000 MB, priority 2); nothing starts until it is asked for",
            Describe(changes));
    }

    [Fact]
    public void Becoming_always_on_starts_a_stopped_service_or_container_but_not_a_running_one()
    {
        var before = Parse(Service("whisper") + Service("tts") + Service("embed", type: "docker"));
        var after = Parse(Service("whisper", alwaysOn: true) + Service("tts", alwaysOn: true) + Service("embed", alwaysOn: true, type: "docker"));

        var changes = ProfilePlan.Compare(before, after, [TestInstances.Running("tts")]);

        Assert.Equal(
            "embed Starts: always_on: embed is started now"
            + " | embed SettingsChanged: priority, idle stop, pinning, sharing or restart policy changes; applies at once"
            + " | tts SettingsChanged: priority, idle stop, pinning, sharing or restart policy changes; applies at once"
            + " | whisper Starts: always_on: whisper is started now"
            + " | whisper SettingsChanged: priority, idle stop, pinning, sharing or restart policy changes; applies at once",
            Describe(changes));
    }

    [Fact]
    public void A_new_restart_policy_applies_at_once_without_a_restart()
    {
        var changes = ProfilePlan.Compare(Parse(Service("whisper")), Parse(Service("whisper", restart: "restart: on-failure")), [TestInstances.Running("whisper")]);

        Assert.Equal("whisper SettingsChanged: priority, idle stop, pinning, sharing or restart policy changes; applies at once", Describe(changes));
    }
}
