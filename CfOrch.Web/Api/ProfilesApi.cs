using CfOrch.Core.Profiles;
using CfOrch.Web.Auth;
using CfOrch.Web.Protocol;
using CfOrch.Web.Security;

namespace CfOrch.Web.Api;

public static class ProfilesApi
{
    /// <summary>
    /// <c>GET /api/profiles</c> (cf-orch's list), <c>GET /api/profiles/{name}</c> (its YAML) and
    /// <c>PUT /api/profiles/{name}</c> (validate, save atomically with a backup, apply without a restart).
    /// </summary>
    public static IEndpointRouteBuilder MapProfilesApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/profiles").WithTags("Profiles");

        group.MapGet("", (ProfileRegistry registry) => Results.Json(new
        {
            active = registry.Active.Profile.Name,
            active_reason = registry.Active.Reason,
            profiles = registry.Profiles.Select(p => new
            {
                name = p.Name,
                vram_total_mb = p.Profile.VramTotalMb,
                origin = p.Origin.ToString().ToLowerInvariant(),
                source = p.Source,
                active = p == registry.Active.Loaded,
                services = p.Profile.Services.Keys.Order(StringComparer.Ordinal),
            }),
            problems = registry.Problems.Select(p => new
            {
                source = p.Source,
                consequence = p.Consequence,
                errors = p.Errors.Select(ErrorRow.From),
            }),
        }, ApiJson.Options)).RequireAuthorization(AccessPolicies.Read);

        group.MapGet("/{name}", (string name, ProfileRegistry registry, HttpContext http, AccessEvaluator access) =>
        {
            var request = http.Request;

            // A file of yours that does not load is still there to read (and fix): its text, and in JSON its problem.
            var broken = registry.Find(name) is null ? registry.Broken.FirstOrDefault(b => b.Name == name) : null;
            var profile = broken?.AsLoaded() ?? Find(registry, name);

            // Secrets in env (HF_TOKEN: …) only for those who may control cf-orch.
            var yaml = access.Evaluate(http).CanControl ? profile.Yaml : ProfileSecrets.MaskYaml(profile.Yaml);
            if (request.Headers.Accept.ToString().Contains("application/json", StringComparison.OrdinalIgnoreCase))
            {
                return Results.Json(new
                {
                    name = profile.Name,
                    origin = profile.Origin.ToString().ToLowerInvariant(),
                    source = profile.Source,
                    active = profile == registry.Active.Loaded,
                    yaml,
                    problem = broken is { Problem.Errors: [var first, ..] } ? first.ToString() : null,
                }, ApiJson.Options);
            }

            return Results.Text(yaml, "application/yaml; charset=utf-8");
        }).RequireAuthorization(AccessPolicies.Read);

        group.MapPut("/{name}", async (string name, bool? dry_run, HttpRequest request, ProfileEditor editor, CancellationToken ct) =>
        {
            var yaml = await ApiBodies.ReadTextAsync(request, ProfileParser.MaxFileBytes, ct);
            if (dry_run == true)
            {
                var preview = editor.Preview(name, yaml);
                return Results.Json(new
                {
                    valid = true,
                    name,
                    path = preview.Path,
                    changes = preview.Changes.Select(c => new { service = c.Service, kind = c.Kind, description = c.Description, affects_running_instance = c.AffectsRunningInstance }),
                }, ApiJson.Options);
            }

            var saved = editor.Save(name, yaml);
            return Results.Json(new
            {
                saved = true,
                name = saved.Name,
                path = saved.Path,
                backup = saved.Backup,
                active = saved.Active,
                active_profile = saved.ActiveProfile,
            }, ApiJson.Options);
        }).RequireAuthorization(AccessPolicies.Control).DocumentsBody<string>("application/yaml").WithMetadata(BodyMediaTypes.Yaml);

        // Use another profile from now on (and after restarts): the same plan a save of the active profile shows.
        group.MapPost("/{name}/activate", (string name, bool? dry_run, ProfileRegistry registry, ProfileEditor editor) =>
        {
            if (registry.Find(name) is null && registry.Broken.FirstOrDefault(b => b.Name == name) is { } broken)
            {
                throw new ApiException(422, $"profile '{name}' ({broken.Source}) does not load, so it cannot be used: {(broken.Problem.Errors is [var first, ..] ? first.ToString() : broken.Problem.Consequence)}");
            }

            Find(registry, name);
            var changes = dry_run == true ? editor.PreviewActivation(name) : editor.Activate(name);
            return Results.Json(new
            {
                activated = dry_run != true,
                name,
                active_profile = registry.Active.Profile.Name,
                reason = registry.Active.Reason,
                changes = changes.Select(c => new { service = c.Service, kind = c.Kind, description = c.Description, affects_running_instance = c.AffectsRunningInstance }),
            }, ApiJson.Options);
        }).RequireAuthorization(AccessPolicies.Control);

        return endpoints;
    }

    private static LoadedProfile Find(ProfileRegistry registry, string name)
    {
        if (!ProfileParser.IsValidName(name))
        {
            throw new ApiException(422, $"'{name}' is not a profile name (letters, digits, '.', '_' and '-')");
        }

        return registry.Find(name) ?? throw new ApiException(404, $"no profile is named '{name}'");
    }

    public sealed record ErrorRow(string File, int Line, int Column, string Path, string Message)
    {
        public static ErrorRow From(ProfileError e) => new(e.File, e.Line, e.Column, e.Path, e.Message);
    }
}
