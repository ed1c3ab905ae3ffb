using System.Net;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace NodeAgent.AppHostTests;

/// <summary>
/// A local run of the real AppHost (PostgreSQL from the machine's binaries, both agents, the dashboard): what a
/// developer sees after <c>dotnet run --project AppHost</c>.
/// </summary>
[Collection(LocalAppHost.Collection)]
public sealed class LocalRunTests(LocalAppHost host) : IClassFixture<LocalAppHost>
{
    /// <summary>The sample files of each node (AppHost/samples/&lt;node&gt;), nested folders included.</summary>
    private static readonly Dictionary<string, string[]> SampleFiles = new()
    {
        ["node-1"] = ["motd.txt", "inventory.json", "reports/daily.csv"],
        ["node-2"] = ["readme.md", "settings.ini", "jobs/nightly.sh"],
    };

    [Fact]
    public async Task Both_nodes_are_healthy_and_store_their_own_sample_files()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var ct = cts.Token;

        foreach (var node in LocalAppHost.Nodes)
        {
            using var client = host.App.CreateHttpClient(node, "http");
            using var response = await client.GetAsync(new Uri("/health", UriKind.Relative), ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        await using var dataSource = await host.OpenDatabaseAsync(ct);
        var latest = await LocalAppHost.WaitForScansAsync(dataSource, LocalAppHost.Nodes, DateTime.MinValue, ct);

        foreach (var node in LocalAppHost.Nodes)
        {
            var (mountPath, fileList, _) = latest[node];
            Assert.EndsWith(Path.Combine("samples", node), mountPath.TrimEnd('/'), StringComparison.Ordinal);
            foreach (var file in SampleFiles[node])
            {
                Assert.Contains($"\"{file}\"", fileList, StringComparison.Ordinal);
            }

            foreach (var file in SampleFiles.Where(s => s.Key != node).SelectMany(s => s.Value))
            {
                Assert.DoesNotContain(file, fileList, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task Scan_spans_of_both_nodes_reach_the_dashboard()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        using var dashboard = host.CreateDashboardClient();

        foreach (var node in LocalAppHost.Nodes)
        {
            IReadOnlyList<string> spans;
            while (!(spans = await LocalAppHost.SpanNamesAsync(dashboard, node, cts.Token)).Contains("inventory.scan"))
            {
                await Task.Delay(TimeSpan.FromSeconds(1), cts.Token);
            }

            Assert.Contains("inventory.store", spans);
        }
    }

    [Fact]
    public async Task Logs_and_metrics_of_both_nodes_reach_the_dashboard()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        using var dashboard = host.CreateDashboardClient();

        foreach (var node in LocalAppHost.Nodes)
        {
            while (!(await LocalAppHost.LogMessagesAsync(dashboard, node, cts.Token)).Any(m => m.Contains("Successfully saved data", StringComparison.Ordinal)))
            {
                await Task.Delay(TimeSpan.FromSeconds(1), cts.Token);
            }

            while (!await LocalAppHost.HasMetricsAsync(dashboard, node, cts.Token))
            {
                await Task.Delay(TimeSpan.FromSeconds(1), cts.Token);
            }
        }
    }

    [Fact]
    public async Task A_node_restarted_by_the_orchestrator_stores_again()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var ct = cts.Token;
        const string node = "node-1";
        var before = await host.App.ResourceNotifications.WaitForResourceAsync(node, e => e.Snapshot.State?.Text == KnownResourceStates.Running, ct);

        var result = await host.App.Services.GetRequiredService<ResourceCommandService>()
            .ExecuteCommandAsync(node, KnownResourceCommands.RestartCommand, ct);
        Assert.True(result.Success, result.Message);

        var after = await host.App.ResourceNotifications.WaitForResourceAsync(node, e =>
            e.Snapshot.State?.Text == KnownResourceStates.Running && e.Snapshot.StartTimeStamp > before.Snapshot.StartTimeStamp, ct);
        await host.App.ResourceNotifications.WaitForResourceHealthyAsync(node, ct);

        // The restarted agent scans at start: a scan stored after the new process started proves it works again.
        await using var dataSource = await host.OpenDatabaseAsync(ct);
        var latest = await LocalAppHost.WaitForScansAsync(dataSource, [node], after.Snapshot.StartTimeStamp!.Value.ToUniversalTime(), ct);
        Assert.Contains("motd.txt", latest[node].FileList, StringComparison.Ordinal);
    }
}
