using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Dashboards;

/// <summary>One series of an instant query's result: its labels and its value (NaN included, as Prometheus returns it).</summary>
public sealed record PrometheusSample(IReadOnlyDictionary<string, string> Labels, double Value)
{
    public override string ToString() =>
        $"{{{string.Join(", ", Labels.Select(l => $"{l.Key}=\"{l.Value}\""))}}} {Value.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>What /api/v1/query answered: <c>success</c> with samples, or <c>error</c> with Prometheus' reason.</summary>
public sealed record PrometheusQueryResult(string Status, string? Error, IReadOnlyList<PrometheusSample> Samples);

/// <summary>
/// A real Prometheus (the distribution's <c>prometheus</c> binary) on a free loopback port, scraping one agent every
/// second with the <c>node</c> label the PodMonitor and ServiceMonitor give it in a cluster, its TSDB in a temporary
/// folder. Disposing stops it by its PID and removes the folder.
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    public const string JobName = "nodeagent";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly Process _process;
    private readonly string _directory;
    private readonly ConcurrentQueue<string> _output = new();
    private readonly HttpClient _http;

    private PrometheusServer(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        Url = new Uri($"http://127.0.0.1:{port}/");
        _http = new HttpClient { BaseAddress = Url, Timeout = TimeSpan.FromSeconds(10) };
        process.OutputDataReceived += (_, e) => Collect(e.Data);
        process.ErrorDataReceived += (_, e) => Collect(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Uri Url { get; }

    public string Output => string.Join('\n', _output);

    /// <summary>The binary: NODEAGENT_TEST_PROMETHEUS, else <c>prometheus</c> on PATH (Debian's package puts it in /usr/bin).</summary>
    public static string Binary =>
        Environment.GetEnvironmentVariable("NODEAGENT_TEST_PROMETHEUS") is { Length: > 0 } configured
            ? configured
            : (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(':', StringSplitOptions.RemoveEmptyEntries)
                .Select(dir => Path.Combine(dir, "prometheus"))
                .FirstOrDefault(File.Exists)
              ?? throw new InvalidOperationException(
                  "These tests need a real Prometheus: install it (Debian: apt-get install --no-install-recommends prometheus; CI does, "
                  + "without starting its service) or point NODEAGENT_TEST_PROMETHEUS at a prometheus binary.");

    /// <summary>Starts Prometheus scraping <paramref name="target"/> (host:port) as node <paramref name="node"/>, and waits until it is ready.</summary>
    public static async Task<PrometheusServer> StartAsync(string target, string node)
    {
        var binary = Binary;
        var directory = Directory.CreateTempSubdirectory("nodemonitor-prometheus-").FullName;
        try
        {
            var port = AgentProcess.FreePort();
            var config = Path.Combine(directory, "prometheus.yml");
            // Labels of a static target are target labels, as the relabeling of a PodMonitor makes `node` one; the
            // agent's own `node` label (on the scan metrics) becomes exported_node, exactly as in a cluster.
            await File.WriteAllTextAsync(config, $"""
                global:
                  scrape_interval: 1s
                  scrape_timeout: 1s
                  evaluation_interval: 1s
                scrape_configs:
                - job_name: {JobName}
                  metrics_path: /metrics
                  static_configs:
                  - targets: ['{target}']
                    labels:
                      node: '{node}'
                """);

            var start = new ProcessStartInfo(binary)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = directory,
            };
            foreach (var argument in (string[])[
                         $"--config.file={config}",
                         $"--storage.tsdb.path={Path.Combine(directory, "data")}",
                         $"--web.listen-address=127.0.0.1:{port}",
                         "--storage.tsdb.retention.time=1h",
                         "--log.level=warn",
                     ])
            {
                start.ArgumentList.Add(argument);
            }

            var server = new PrometheusServer(Process.Start(start) ?? throw new InvalidOperationException($"{binary} did not start."), directory, port);
            try
            {
                await server.WaitUntilReadyAsync();
                return server;
            }
            catch
            {
                await server.DisposeAsync();
                throw;
            }
        }
        catch when (Directory.Exists(directory))
        {
            // Once the server object exists, its disposal has removed the folder already.
            Directory.Delete(directory, recursive: true);
            throw;
        }
    }

    /// <summary>Waits until Prometheus has scraped the agent successfully (its <c>up</c> is 1).</summary>
    public async Task WaitForTargetUpAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var up = await QueryAsync($"up{{job=\"{JobName}\"}}");
            if (up.Samples.Any(s => s.Value == 1))
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                using var targets = await _http.GetAsync(new Uri("api/v1/targets", UriKind.Relative));
                throw new TimeoutException($"Prometheus did not scrape the agent within {timeout}: {await targets.Content.ReadAsStringAsync()}\n{Output}");
            }

            await Task.Delay(250);
        }
    }

    /// <summary>An instant query, evaluated now, through the HTTP API that Grafana uses.</summary>
    public async Task<PrometheusQueryResult> QueryAsync(string promql)
    {
        using var response = await _http.GetAsync(new Uri($"api/v1/query?query={Uri.EscapeDataString(promql)}", UriKind.Relative));
        var body = await response.Content.ReadAsStringAsync();
        using var json = JsonDocument.Parse(body);
        var root = json.RootElement;
        var status = root.GetProperty("status").GetString() ?? "";
        if (status != "success")
        {
            return new PrometheusQueryResult(status, root.TryGetProperty("error", out var error) ? error.GetString() : body, []);
        }

        var data = root.GetProperty("data");
        var samples = new List<PrometheusSample>();
        if (data.GetProperty("resultType").GetString() == "vector")
        {
            foreach (var series in data.GetProperty("result").EnumerateArray())
            {
                var labels = series.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "", StringComparer.Ordinal);
                samples.Add(new PrometheusSample(labels, ParseValue(series.GetProperty("value")[1].GetString())));
            }
        }
        else
        {
            return new PrometheusQueryResult("error", $"a {data.GetProperty("resultType").GetString()}, not an instant vector", []);
        }

        return new PrometheusQueryResult(status, null, samples);
    }

    /// <summary>The values of <paramref name="label"/> among the series that <paramref name="match"/> selects (Grafana's label_values).</summary>
    public async Task<IReadOnlyList<string>> LabelValuesAsync(string label, string? match)
    {
        var query = match is null ? "" : $"?match[]={Uri.EscapeDataString(match)}";
        using var response = await _http.GetAsync(new Uri($"api/v1/label/{Uri.EscapeDataString(label)}/values{query}", UriKind.Relative));
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("status").GetString() == "success"
            ? [.. json.RootElement.GetProperty("data").EnumerateArray().Select(v => v.GetString() ?? "")]
            : [];
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                // SIGTERM lets it close its TSDB; the test process owns this PID and nothing else is signalled.
                _ = Kill(_process.Id, 15);
                using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                try
                {
                    await _process.WaitForExitAsync(patience.Token);
                }
                catch (OperationCanceledException)
                {
                    _process.Kill();
                    await _process.WaitForExitAsync();
                }
            }

            _process.Dispose();
            _http.Dispose();
        }
        finally
        {
            if (Directory.Exists(_directory))
            {
                Directory.Delete(_directory, recursive: true);
            }
        }
    }

    private async Task WaitUntilReadyAsync()
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            if (_process.HasExited)
            {
                _process.WaitForExit();
                throw new InvalidOperationException($"Prometheus exited ({_process.ExitCode}) at start:\n{Output}");
            }

            try
            {
                using var ready = await _http.GetAsync(new Uri("-/ready", UriKind.Relative));
                if (ready.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Prometheus was not ready within {StartTimeout}:\n{Output}");
            }

            await Task.Delay(200);
        }
    }

    private static double ParseValue(string? text) => text switch
    {
        "NaN" => double.NaN,
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        _ => double.Parse(text ?? "", CultureInfo.InvariantCulture),
    };

    private void Collect(string? line)
    {
        if (line is not null)
        {
            _output.Enqueue(line);
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
