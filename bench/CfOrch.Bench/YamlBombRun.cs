using System.Diagnostics;
using System.Globalization;
using System.Text;
using CfOrch.Core.Profiles;

namespace CfOrch.Bench;

/// <summary>
/// Times <see cref="ProfileParser.Parse"/> (parse and validate, the work a profile upload or a file reload does) on
/// each of <see cref="YamlBombs"/> and prints a Markdown table. The target is at most 100 ms for any document. It
/// also times <see cref="ProfileSecrets.MaskYaml"/>, which reads the same documents within the same limits.
/// </summary>
internal static class YamlBombRun
{
    public const double TargetMs = 100;

    public static int Run(int iterations)
    {
        var bombs = YamlBombs.All();
        Console.WriteLine($"YAML bombs — {Environment.ProcessorCount} cores, {iterations} runs each after one warm-up, {DateTime.UtcNow:yyyy-MM-dd}");
        Console.WriteLine();
        Console.WriteLine("| document | bytes | outcome | mean ms | max ms | MaskYaml max ms |");
        Console.WriteLine("| --- | ---: | --- | ---: | ---: | ---: |");
        var worst = 0.0;
        foreach (var (name, yaml) in bombs)
        {
            var outcome = Outcome(yaml);
            var times = Time(iterations, () => Outcome(yaml));
            var maskTimes = Time(iterations, () => ProfileSecrets.MaskYaml(yaml));
            worst = Math.Max(worst, Math.Max(times.Max(), maskTimes.Max()));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {Encoding.UTF8.GetByteCount(yaml):N0} | {outcome} | {times.Average():0.00} | {times.Max():0.00} | {maskTimes.Max():0.00} |"));
        }

        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Slowest single run: {worst:0.00} ms; target ≤ {TargetMs:0} ms per document: {(worst <= TargetMs ? "met" : "NOT met")}."));
        return worst <= TargetMs ? 0 : 1;
    }

    private static double[] Time(int iterations, Action run)
    {
        run();
        var times = new double[iterations];
        for (var i = 0; i < iterations; i++)
        {
            var start = Stopwatch.GetTimestamp();
            run();
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        return times;
    }

    private static string Outcome(string yaml)
    {
        try
        {
            var profile = ProfileParser.Parse(yaml, "bomb.yaml");
            return $"valid ({profile.Services.Count} services)";
        }
        catch (ProfileException ex)
        {
            var first = ex.Errors.Count > 0 ? ex.Errors[0] : null;
            var message = first is null ? ex.Message : $"{first.Line}:{first.Column}: {Shorten(first.Message)}";
            return ex.Errors.Count > 1 ? $"{ex.Errors.Count:N0} errors, first {message}" : message;
        }
    }

    private static string Shorten(string message)
    {
        var cut = message.IndexOf(';', StringComparison.Ordinal);
        var text = cut > 0 ? message[..cut] : message;
        text = text.Length > 70 ? string.Concat(text.AsSpan(0, 70), "…") : text;
        return text.Replace("|", "\\|", StringComparison.Ordinal);
    }
}
