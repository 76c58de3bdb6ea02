using System.Globalization;
using CfOrch.Web.Protocol;

namespace CfOrch.Web.Api;

/// <summary>The field checks that several endpoints share, each with one message.</summary>
public static class ApiChecks
{
    public const int MaxGpuId = 63;

    public const double MaxTtlSeconds = 366 * 24 * 3600;

    /// <summary>An optional <c>gpu_id</c>: absent, or 0–63.</summary>
    public static void Gpu(int? gpu)
    {
        if (gpu is < 0 or > MaxGpuId)
        {
            throw new ApiException(422, $"gpu_id must be between 0 and {MaxGpuId} (got {gpu})");
        }
    }

    /// <summary>A required <c>gpu_id</c>.</summary>
    public static int RequiredGpu(int? gpu) => gpu is { } g and >= 0 and <= MaxGpuId
        ? g
        : throw new ApiException(422, $"gpu_id is required and must be between 0 and {MaxGpuId} (got {gpu?.ToString(CultureInfo.InvariantCulture) ?? "nothing"})");

    /// <summary><c>ttl_s</c>: 0 (no expiry) up to a year.</summary>
    public static void Ttl(double ttl)
    {
        if (!double.IsFinite(ttl) || ttl < 0 || ttl > MaxTtlSeconds)
        {
            throw new ApiException(422, string.Create(CultureInfo.InvariantCulture, $"ttl_s must be between 0 (no expiry) and {MaxTtlSeconds} seconds"));
        }
    }

    /// <summary>The model a request names in <c>params.model</c> (as the original's clients send it), or null when none or blank.</summary>
    public static string? ParamsModel(IReadOnlyDictionary<string, string> parameters) =>
        parameters.TryGetValue("model", out var model) && !string.IsNullOrWhiteSpace(model) ? model : null;

    /// <summary>The models a request asks for, in order: <c>model_candidates</c>, else <c>params.model</c>, else none.</summary>
    public static IReadOnlyList<string> ModelCandidates(IReadOnlyList<string> candidates, IReadOnlyDictionary<string, string> parameters) =>
        candidates.Count > 0 ? candidates : ParamsModel(parameters) is { } model ? [model] : [];
}
