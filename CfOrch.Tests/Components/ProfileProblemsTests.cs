using Bunit;
using CfOrch.Core.Configuration;
using CfOrch.Web.Components.Layout;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;

namespace CfOrch.Tests.Components;

public sealed class ProfileProblemsTests : EngineBunitContext
{
    [Fact]
    public void Nothing_is_shown_when_every_profile_loaded()
    {
        UseGpus(null, new SimulatedGpuOptions { Name = "g", TotalMb = 8192 });

        var component = Render<ProfileProblems>();

        Assert.Empty(component.FindAll("[data-testid=profile-problem]"));
    }

    [Fact]
    public void A_broken_profile_is_listed_with_every_error_and_what_runs_instead()
    {
        var path = Data.Write("bad.yaml", "schema_version: 1\nname: bad\nservices:\n  x:\n    max_mb: 1\n    priorty: 1\n");
        UseGpus(path, new SimulatedGpuOptions { Name = "g", TotalMb = 8192 });

        var component = Render<ProfileProblems>();

        var problem = component.Find("[data-testid=profile-problem]");
        Assert.Contains($"Profile {path} is invalid", problem.TextContent, StringComparison.Ordinal);
        var errors = problem.QuerySelectorAll("li").Select(li => li.TextContent).ToList();
        Assert.Contains($"{path}:6:5: services.x.priorty: unknown key 'priorty' (did you mean 'priority'?)", errors);
        Assert.Contains($"{path}:5:5: services.x.priority: required key 'priority' is missing", errors);
        Assert.Contains("no earlier version of it was saved: cf-orch runs no services until it is fixed", component.Find("[data-testid=active-profile-reason]").TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public void On_the_profiles_page_the_profile_in_use_is_said_once_by_the_page_not_again_here()
    {
        var path = Data.Write("bad.yaml", "schema_version: 1\nname: bad\nservices:\n  x:\n    max_mb: 1\n");
        UseGpus(path, new SimulatedGpuOptions { Name = "g", TotalMb = 8192 });
        var navigation = Services.GetRequiredService<NavigationManager>();

        var component = Render<ProfileProblems>();
        Assert.Single(component.FindAll("[data-testid=active-profile-reason]"));

        navigation.NavigateTo("profiles");
        component.WaitForAssertion(() => Assert.Empty(component.FindAll("[data-testid=active-profile-reason]")));
        Assert.Single(component.FindAll("[data-testid=profile-problem]"));

        navigation.NavigateTo("services");
        component.WaitForAssertion(() => Assert.Single(component.FindAll("[data-testid=active-profile-reason]")));
    }
}
