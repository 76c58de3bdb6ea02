using System.Globalization;
using System.Net;

namespace CfOrch.StandIns;

/// <summary>What the stand-in plays.</summary>
public enum StandInMode
{
    Ollama,
    Service,
}

/// <summary>The stand-in's command line, parsed. <see cref="Parse"/> throws <see cref="StandInUsageException"/> on bad arguments.</summary>
public sealed record StandInOptions
{
    public const string Usage =
        "usage: CfOrch.StandIns ollama --port N [--host 127.0.0.1] [--vram-mb 3000] [--models a,b] [--loaded a] [--startup-delay-ms 0] [--answer-delay-ms 0] [--ignore-sigterm] [--child]\n" +
        "       CfOrch.StandIns service --port N [--host 127.0.0.1] [--health-path /health] [--status 200] [--hang-health] [--startup-delay-ms 0] [--answer-delay-ms 0] [--ignore-sigterm] [--child] [--exit-after-ms N] [--exit-code 0]\n" +
        "Either mode also answers POST /control/exit?code=N (default 1): it exits with that code once the answer is sent.";

    public required StandInMode Mode { get; init; }
    public required int Port { get; init; }
    public string Host { get; init; } = "127.0.0.1";
    public int StartupDelayMs { get; init; }

    /// <summary>Milliseconds every request waits before it is answered: a busy or loaded service.</summary>
    public int AnswerDelayMs { get; init; }
    public bool IgnoreSigterm { get; init; }
    public bool Child { get; init; }
    public int? ExitAfterMs { get; init; }
    public int ExitCode { get; init; }

    // ollama
    public int VramMb { get; init; } = 3000;
    public IReadOnlyList<string> Models { get; init; } = ["llama3.2:3b"];
    public IReadOnlyList<string> Loaded { get; init; } = ["llama3.2:3b"];

    // service
    public string HealthPath { get; init; } = "/health";
    public int Status { get; init; } = 200;
    public bool HangHealth { get; init; }

    private static readonly string[] CommonOptions = ["--port", "--host", "--startup-delay-ms", "--answer-delay-ms", "--ignore-sigterm", "--child", "--exit-after-ms", "--exit-code"];
    private static readonly string[] OllamaOptions = ["--vram-mb", "--models", "--loaded"];
    private static readonly string[] ServiceOptions = ["--health-path", "--status", "--hang-health"];
    private static readonly string[] Flags = ["--ignore-sigterm", "--child", "--hang-health"];

    public static StandInOptions Parse(IReadOnlyList<string> args)
    {
        if (args.Count == 0)
            throw new StandInUsageException("missing mode: the first argument is 'ollama' or 'service'");
        var mode = args[0] switch
        {
            "ollama" => StandInMode.Ollama,
            "service" => StandInMode.Service,
            var other => throw new StandInUsageException($"unknown mode '{other}': the first argument is 'ollama' or 'service'"),
        };
        var allowed = CommonOptions.Concat(mode == StandInMode.Ollama ? OllamaOptions : ServiceOptions).ToHashSet(StringComparer.Ordinal);

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 1; i < args.Count; i++)
        {
            var name = args[i];
            if (!allowed.Contains(name))
                throw new StandInUsageException(name.StartsWith("--", StringComparison.Ordinal)
                    ? $"unknown option '{name}' for mode '{args[0]}'"
                    : $"unexpected argument '{name}'");
            if (values.ContainsKey(name))
                throw new StandInUsageException($"option '{name}' is given twice");
            if (Flags.Contains(name))
            {
                values[name] = "true";
                continue;
            }
            if (i + 1 >= args.Count)
                throw new StandInUsageException($"option '{name}' needs a value");
            values[name] = args[++i];
        }

        if (!values.TryGetValue("--port", out var port))
            throw new StandInUsageException("option '--port' is required (0 picks a free port)");
        var models = values.TryGetValue("--models", out var m) ? SplitNames(m) : ["llama3.2:3b"];
        var options = new StandInOptions
        {
            Mode = mode,
            Port = ParseInt("--port", port, 0, IPEndPoint.MaxPort),
            Host = values.TryGetValue("--host", out var host) ? ParseHost(host) : "127.0.0.1",
            StartupDelayMs = ParseOptionalInt(values, "--startup-delay-ms", 0, 0, int.MaxValue),
            AnswerDelayMs = ParseOptionalInt(values, "--answer-delay-ms", 0, 0, 600_000),
            IgnoreSigterm = values.ContainsKey("--ignore-sigterm"),
            Child = values.ContainsKey("--child"),
            ExitAfterMs = values.TryGetValue("--exit-after-ms", out var exitAfter) ? ParseInt("--exit-after-ms", exitAfter, 0, int.MaxValue) : null,
            ExitCode = ParseOptionalInt(values, "--exit-code", 0, 0, 255),
            VramMb = ParseOptionalInt(values, "--vram-mb", 3000, 0, 1_048_576),
            Models = models,
            Loaded = values.TryGetValue("--loaded", out var loaded) ? SplitNames(loaded) : models.Take(1).ToArray(),
            HealthPath = values.TryGetValue("--health-path", out var path) ? ParseHealthPath(path) : "/health",
            Status = ParseOptionalInt(values, "--status", 200, 200, 599),
            HangHealth = values.ContainsKey("--hang-health"),
        };
        if (values.ContainsKey("--exit-code") && options.ExitAfterMs is null)
            throw new StandInUsageException("option '--exit-code' needs '--exit-after-ms'");
        return options;
    }

    private static string[] SplitNames(string value) =>
        value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static int ParseOptionalInt(Dictionary<string, string> values, string name, int fallback, int min, int max) =>
        values.TryGetValue(name, out var value) ? ParseInt(name, value, min, max) : fallback;

    private static int ParseInt(string name, string value, int min, int max)
    {
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var result) || result < min || result > max)
            throw new StandInUsageException($"option '{name}': '{value}' is not a whole number from {min} to {max}");
        return result;
    }

    private static string ParseHost(string value)
    {
        if (!IPAddress.TryParse(value, out var address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            throw new StandInUsageException($"option '--host': '{value}' is not an IPv4 address (e.g. 127.0.0.1)");
        return address.ToString();
    }

    private static string ParseHealthPath(string value)
    {
        if (!value.StartsWith('/') || value.Contains('?', StringComparison.Ordinal) || value.Contains('{', StringComparison.Ordinal) || value.Any(char.IsWhiteSpace))
            throw new StandInUsageException($"option '--health-path': '{value}' is not a path starting with '/'");
        return value;
    }
}

/// <summary>Bad command-line arguments: the message is printed on one line and the process exits with 2.</summary>
public sealed class StandInUsageException(string message) : Exception(message);
