using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;

namespace CfOrch.Bench;

/// <summary>
/// The delay from a state change to its server-sent event: a lease is requested (the change) while /api/events is
/// open, and the clock stops when the matching lease_granted event arrives.
/// </summary>
internal static class EventDelay
{
    public static async Task<long[]> MeasureAsync(HttpClient http, int samples)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("api/events", UriKind.Relative));
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await using var body = await response.Content.ReadAsStreamAsync();
        using var reader = new StreamReader(body);
        await NextAsync(reader, "snapshot", _ => true);

        var delays = new List<long>();
        for (var i = 0; i < samples; i++)
        {
            var holder = $"event-{i}";
            var start = Stopwatch.GetTimestamp();
            var post = http.PostAsJsonAsync(new Uri("api/leases", UriKind.Relative), new { node_id = "local", gpu_id = 0, mb = 1, service = holder });
            var granted = await NextAsync(reader, "lease_granted", d => d.GetProperty("holder_service").GetString() == holder);
            delays.Add(Stopwatch.GetTimestamp() - start);
            using var posted = await post;
            var id = granted.GetProperty("lease_id").GetString();
            using var released = await http.DeleteAsync(new Uri($"api/leases/{id}", UriKind.Relative));
        }

        return delays.Order().ToArray();
    }

    private static async Task<JsonElement> NextAsync(StreamReader reader, string name, Func<JsonElement, bool> match)
    {
        string? current = null;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                current = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal) && current == name)
            {
                var data = JsonDocument.Parse(line[6..]).RootElement.Clone();
                if (match(data))
                {
                    return data;
                }
            }
        }

        throw new EndOfStreamException("/api/events ended");
    }
}
