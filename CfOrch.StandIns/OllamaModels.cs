using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CfOrch.StandIns;

public sealed record OllamaVersion(string Version);

public sealed record OllamaModelDetails(
    string ParentModel, string Format, string Family, IReadOnlyList<string> Families, string ParameterSize, string QuantizationLevel);

/// <summary>One entry of <c>GET /api/tags</c>.</summary>
public sealed record OllamaTag(string Name, string Model, string ModifiedAt, long Size, string Digest, OllamaModelDetails Details);

/// <summary>One entry of <c>GET /api/ps</c>.</summary>
public sealed record OllamaRunning(string Name, string Model, long Size, string Digest, OllamaModelDetails Details, string ExpiresAt, long SizeVram);

public sealed record OllamaList<T>(IReadOnlyList<T> Models);

/// <summary>The body of <c>POST /api/generate</c> or <c>/api/chat</c>: the model, and how long to keep it loaded (the prompt is not read).</summary>
public sealed record GenerateRequest(string? Model, JsonElement? KeepAlive);

/// <summary>Ollama's answer to a generate request (or an unload: done_reason "unload").</summary>
public sealed record GenerateAnswer(string Model, string CreatedAt, string Response, bool Done, string DoneReason);

public sealed record ChatMessage(string Role, string Content);

/// <summary>Ollama's answer to a chat request.</summary>
public sealed record ChatAnswer(string Model, string CreatedAt, ChatMessage Message, bool Done, string DoneReason);

/// <summary>Ollama's error answer.</summary>
public sealed record OllamaError(string Error);

/// <summary>The body of <c>POST /control/ps</c>: either field may be left out to keep its current value.</summary>
public sealed record PsControl(int? VramMb, IReadOnlyList<string>? Loaded);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(OllamaVersion))]
[JsonSerializable(typeof(OllamaList<OllamaTag>))]
[JsonSerializable(typeof(OllamaList<OllamaRunning>))]
[JsonSerializable(typeof(PsControl))]
[JsonSerializable(typeof(GenerateRequest))]
[JsonSerializable(typeof(GenerateAnswer))]
[JsonSerializable(typeof(ChatAnswer))]
[JsonSerializable(typeof(OllamaError))]
[JsonSerializable(typeof(ServiceHealth))]
internal sealed partial class StandInJson : JsonSerializerContext;

/// <summary>What the stand-in says about a model name: realistic values for a few well-known models, made up from the name otherwise.</summary>
public static class OllamaCatalog
{
    public const string ModifiedAt = "2025-01-01T00:00:00Z";
    public const string ExpiresAt = "2030-01-01T00:00:00Z";

    private static readonly Dictionary<string, (long Size, string Family, string ParameterSize)> Known = new(StringComparer.Ordinal)
    {
        ["llama3.2:3b"] = (2_019_393_189, "llama", "3.2B"),
        ["llama3.2:1b"] = (1_321_098_329, "llama", "1.2B"),
        ["llama3.1:8b"] = (4_920_753_328, "llama", "8.0B"),
        ["qwen2.5:7b"] = (4_683_087_332, "qwen2", "7.6B"),
        ["qwen2.5:3b"] = (1_929_912_432, "qwen2", "3.1B"),
        ["mistral:7b"] = (4_113_301_824, "llama", "7.2B"),
        ["nomic-embed-text:latest"] = (274_302_450, "nomic-bert", "137M"),
    };

    public static OllamaTag Tag(string name)
    {
        var (size, details) = Describe(name);
        return new OllamaTag(name, name, ModifiedAt, size, Digest(name), details);
    }

    public const long MiB = 1024L * 1024L;

    public static OllamaRunning Running(LoadedEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var (_, details) = Describe(entry.Name);
        return new OllamaRunning(entry.Name, entry.Name, entry.SizeVram, Digest(entry.Name), details, entry.ExpiresAt, entry.SizeVram);
    }

    /// <summary>The loaded models with <paramref name="vramMb"/> split evenly over them (the first takes the remainder), expiring far ahead.</summary>
    public static IReadOnlyList<LoadedEntry> Split(IReadOnlyList<string> loaded, int vramMb)
    {
        if (vramMb <= 0 || loaded.Count == 0)
            return [];
        var total = vramMb * MiB;
        var each = total / loaded.Count;
        return loaded.Select((name, i) => new LoadedEntry(name, i == 0 ? total - (each * (loaded.Count - 1)) : each, ExpiresAt)).ToArray();
    }

    private static (long Size, OllamaModelDetails Details) Describe(string name)
    {
        var (size, family, parameterSize) = Known.TryGetValue(name, out var known) ? known : Guess(name);
        return (size, new OllamaModelDetails("", "gguf", family, [family], parameterSize, "Q4_K_M"));
    }

    // "phi3:14b" → family "phi", 14B, about 0.6 GB a billion parameters at Q4_K_M.
    private static (long, string, string) Guess(string name)
    {
        var colon = name.IndexOf(':', StringComparison.Ordinal);
        var baseName = colon < 0 ? name : name[..colon];
        var tag = colon < 0 ? "" : name[(colon + 1)..];
        var family = new string(baseName.TakeWhile(char.IsAsciiLetter).Select(char.ToLowerInvariant).ToArray());
        if (family.Length == 0)
            family = "llama";
        var billions = tag.EndsWith('b') && double.TryParse(tag[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var b) && b > 0 ? b : 7.0;
        return ((long)(billions * 600_000_000), family, billions.ToString("0.0", CultureInfo.InvariantCulture) + "B");
    }

    private static string Digest(string name) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name)));
}
