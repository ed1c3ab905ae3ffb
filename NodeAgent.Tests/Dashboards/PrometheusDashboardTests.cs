using System.Diagnostics;
using System.Text.RegularExpressions;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Dashboards;

/// <summary>
/// The agents' dashboard against the real thing: the real agent, watching a real tree and recording real processes into
/// a real PostgreSQL, scraped by a real Prometheus as a PodMonitor would scrape it; every panel's query, interpolated as
/// Grafana interpolates it, must find that agent's series.
/// </summary>
public sealed partial class PrometheusDashboardTests : IDisposable
{
    private const string AgentsDashboard = "node-monitor-agents.json";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    [Fact]
    public async Task Every_panel_query_finds_the_series_of_a_real_agent_grouped_by_its_node()
    {
        var queries = DashboardFiles.Queries(DashboardFiles.PathOf(AgentsDashboard));
        Assert.NotEmpty(queries);

        await using var running = await StartAgentAndPrometheusAsync();
        await MakeActivityAsync(rounds: 5);

        var variables = new DashboardVariables(
            new Dictionary<string, string> { ["node"] = DashboardVariables.RegexOf(running.Node) },
            rateInterval: "1m", interval: "15s", range: "5m");

        // Counters must have grown across scrapes before a rate over them is more than zero, and a quantile of a
        // histogram whose buckets did not move is NaN: the queries are tried again until they all hold or time is up.
        var deadline = DateTime.UtcNow + Patience;
        List<string> failures;
        while (true)
        {
            failures = [];
            foreach (var query in queries)
            {
                var problem = await CheckAsync(running.Prometheus, variables.Interpolate(query.Expression), running.Node);
                if (problem is not null)
                {
                    failures.Add($"{query}\n    {problem}");
                }
            }

            if (failures.Count == 0 || DateTime.UtcNow > deadline)
            {
                break;
            }

            await Task.Delay(1000);
        }

        Assert.True(failures.Count == 0,
            $"{failures.Count} of {queries.Count} panel queries failed against the agent's metrics:\n{string.Join('\n', failures)}\n"
            + $"Agent output (tail):\n{Tail(running.Agent.Output)}\nPrometheus output:\n{running.Prometheus.Output}");
    }

    [Fact]
    public async Task The_node_variable_lists_the_node_of_a_real_agent()
    {
        var dashboard = DashboardFiles.Load(DashboardFiles.PathOf(AgentsDashboard));
        var node = Assert.Single(DashboardFiles.Variables(dashboard), v => (string?)v["name"] == "node");
        var definition = (string?)node["query"]?["query"] ?? (string?)node["definition"] ?? "";
        var labelValues = LabelValuesCall().Match(definition);
        Assert.True(labelValues.Success, $"The node variable's query is not label_values(<selector>, <label>): {definition}");
        Assert.Equal("node", labelValues.Groups["label"].Value);
        Assert.True((bool?)node["multi"] == true && (bool?)node["includeAll"] == true, "The node variable must allow several nodes and All.");

        await using var running = await StartAgentAndPrometheusAsync();

        IReadOnlyList<string> values = [];
        var deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline && !values.Contains(running.Node))
        {
            values = await running.Prometheus.LabelValuesAsync("node", labelValues.Groups["match"].Value);
            await Task.Delay(250);
        }

        Assert.Contains(running.Node, values);
    }

    private static async Task<string?> CheckAsync(PrometheusServer prometheus, string promql, string node)
    {
        if (promql.Contains('$', StringComparison.Ordinal))
        {
            return $"not fully interpolated: {promql}";
        }

        var result = await prometheus.QueryAsync(promql);
        if (result.Status != "success")
        {
            return $"{result.Status}: {result.Error} (query sent: {promql})";
        }

        if (result.Samples.Count == 0)
        {
            return $"no series (query sent: {promql})";
        }

        // Every panel is per node: a series without the agent's node means the query lost the label (no `by (node)`).
        var notPerNode = result.Samples.Where(s => !s.Labels.TryGetValue("node", out var value) || value != node).ToList();
        if (notPerNode.Count > 0)
        {
            return $"series not labelled node=\"{node}\": {string.Join("; ", notPerNode)}";
        }

        if (!result.Samples.Any(s => double.IsFinite(s.Value)))
        {
            return $"no finite value yet: {string.Join("; ", result.Samples)}";
        }

        return null;
    }

    private async Task<RunningAgent> StartAgentAndPrometheusAsync()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync("dashboard");
        var metricsPort = AgentProcess.FreePort();
        var environment = AgentProcess.AgentEnvironment(connectionString, _tree.Root,
            ("urls", $"http://127.0.0.1:{metricsPort}"),
            // Scans every second, so that the scan duration's quantiles have fresh observations in any window.
            ("Agent__Inventory__ScanInterval", "00:00:01"),
            ("Agent__Changes__QuietWindow", "00:00:00.05"));
        var node = environment["Agent__NodeName"]!;
        var agent = AgentProcess.Start(environment);
        try
        {
            await agent.WaitForLinesAsync("Recording process activity", 1, Patience);
            await agent.WaitForLinesAsync("Successfully saved data", 1, Patience);
            var prometheus = await PrometheusServer.StartAsync($"127.0.0.1:{metricsPort}", node);
            var running = new RunningAgent(agent, prometheus, node);
            try
            {
                await prometheus.WaitForTargetUpAsync(Patience);
                return running;
            }
            catch
            {
                await running.DisposeAsync();
                throw;
            }
        }
        catch
        {
            await agent.DisposeAsync();
            throw;
        }
    }

    /// <summary>File changes of every type and a few short-lived processes, spread over several scrapes.</summary>
    private async Task MakeActivityAsync(int rounds)
    {
        var gcc = OnPath("gcc");
        for (var round = 0; round < rounds; round++)
        {
            var dir = _tree.Dir($"round-{round}");
            var source = _tree.File($"round-{round}/main.c", "int main(void) { return 0; }\n");
            _tree.File($"round-{round}/notes.txt", "first");
            await File.AppendAllTextAsync(Path.Combine(dir, "notes.txt"), " and more");
            File.Move(Path.Combine(dir, "notes.txt"), Path.Combine(dir, "renamed.txt"));
            File.SetUnixFileMode(Path.Combine(dir, "renamed.txt"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
            if (round > 0)
            {
                File.Delete(Path.Combine(_tree.Root, $"round-{round - 1}", "renamed.txt"));
            }

            await RunAsync(dir, "python3", "-c", "import sys; sys.exit(3)");
            if (gcc)
            {
                await RunAsync(dir, "gcc", "-c", "-o", "main.o", Path.GetFileName(source));
            }

            await Task.Delay(1000);
        }
    }

    private static async Task RunAsync(string workingDirectory, string fileName, params string[] arguments)
    {
        var start = new ProcessStartInfo(fileName) { WorkingDirectory = workingDirectory, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        await process.StandardOutput.ReadToEndAsync();
        await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
    }

    private static string Tail(string text, int lines = 40) => string.Join('\n', text.Split('\n').TakeLast(lines));

    private static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Any(dir => File.Exists(Path.Combine(dir, program)));

    // Grafana's Prometheus variable function label_values(<series selector>, <label>).
    [GeneratedRegex(@"^\s*label_values\(\s*(?<match>.+?)\s*,\s*(?<label>[A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$")]
    private static partial Regex LabelValuesCall();

    /// <summary>The agent and the Prometheus that scrapes it, stopped in reverse order.</summary>
    private sealed record RunningAgent(AgentProcess Agent, PrometheusServer Prometheus, string Node) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await Prometheus.DisposeAsync();
            }
            finally
            {
                await Agent.DisposeAsync();
            }
        }
    }
}
