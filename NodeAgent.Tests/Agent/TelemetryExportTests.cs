using System.Collections.Concurrent;
using System.Net;
using System.Text;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Agent;

public sealed class TelemetryExportTests : IDisposable
{
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    [Fact]
    public async Task Scan_and_store_spans_are_exported_over_otlp_to_a_receiver()
    {
        var connectionString = await (await PostgresServer.Shared).CreateDatabaseAsync();
        _tree.File("traced.txt");
        var port = AgentProcess.FreePort();
        using var receiver = new HttpListener();
        receiver.Prefixes.Add($"http://127.0.0.1:{port}/");
        receiver.Start();
        var requests = new ConcurrentQueue<(string Path, byte[] Body)>();
        var receiving = Task.Run(async () =>
        {
            while (receiver.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await receiver.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }

                using var body = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(body);
                requests.Enqueue((context.Request.Url!.AbsolutePath, body.ToArray()));
                context.Response.StatusCode = 200;
                context.Response.Close();
            }
        });

        await using var agent = AgentProcess.Start(new Dictionary<string, string?>
        {
            ["ConnectionStrings__monitordb"] = connectionString,
            ["Agent__NodeName"] = "traced-node",
            ["Agent__MountPath"] = _tree.Root,
            ["Agent__RunOnce"] = "true",
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = $"http://127.0.0.1:{port}",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_SERVICE_NAME"] = "nodeagent",
        });
        Assert.True(await agent.WaitForExitAsync(TimeSpan.FromSeconds(60)) == 0, agent.Output);
        receiver.Stop();
        await receiving;

        // OTLP/protobuf carries strings as plain UTF-8: the span names and attributes are readable in the payload.
        var traces = requests.Where(r => r.Path == "/v1/traces").Select(r => Encoding.UTF8.GetString(r.Body)).ToList();
        Assert.NotEmpty(traces);
        var all = string.Concat(traces);
        Assert.Contains("inventory.scan", all, StringComparison.Ordinal);
        Assert.Contains("inventory.store", all, StringComparison.Ordinal);
        Assert.Contains("traced-node", all, StringComparison.Ordinal);
        Assert.Contains("scan.entries", all, StringComparison.Ordinal);
        Assert.Contains("NodeMonitor.NodeAgent", all, StringComparison.Ordinal);
    }
}
