using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NodeAgent.Shared.Hosting;
using NodeAgent.Shared.Telemetry;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Agent;

/// <summary>The room each metric keeps for label sets, on the host the agent runs in, as Prometheus scrapes it.</summary>
public sealed class MetricSeriesTests : IDisposable
{
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    [Fact]
    public async Task A_metric_keeps_256_label_sets_and_counts_the_rest_in_one_overflow_series()
    {
        var port = AgentProcess.FreePort();
        var labels = new ManyLabels(count: 300);
        var run = AgentHost.RunAsync(
            [
                $"--Agent:MountPath={_tree.Root}",
                "--Agent:NodeName=series-under-test",
                "--ConnectionStrings:monitordb=Host=127.0.0.1;Port=1;Database=none;Username=none;Timeout=1",
                $"--urls=http://127.0.0.1:{port}",
            ],
            labels);
        string scraped;
        try
        {
            var lifetime = await labels.Started.WaitAsync(TimeSpan.FromSeconds(30));
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            scraped = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
            lifetime.StopApplication();
        }
        finally
        {
            labels.Stop();
        }

        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(40)));
        var series = scraped.Split('\n').Where(l => l.StartsWith("nodemonitor_test_labels_total{", StringComparison.Ordinal)).ToList();
        var overflow = Assert.Single(series, l => l.Contains("otel_metric_overflow=\"true\"", StringComparison.Ordinal));
        Assert.Equal(AgentDiagnostics.SeriesPerMetric + 1, series.Count);
        // Every add is still counted: 256 label sets kept, the other 44 adds in the overflow series.
        Assert.EndsWith(" 44", overflow, StringComparison.Ordinal);
        var counted = series.Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(300, counted);
    }

    /// <summary>A capability whose only work is one counter with <paramref name="count"/> label values, added once the host has started.</summary>
    private sealed class ManyLabels(int count) : ICapability, IHostedService
    {
        private readonly TaskCompletionSource<IHostApplicationLifetime> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private IHostApplicationLifetime? _lifetime;
        private AgentDiagnostics? _diagnostics;

        public Task<IHostApplicationLifetime> Started => _started.Task;

        public string Name => "test";

        public IReadOnlyList<SettingKey> Settings => [];

        public void Add(AgentBuilder agent) =>
            agent.Services.AddHostedService(services =>
            {
                _diagnostics = services.GetRequiredService<AgentDiagnostics>();
                _lifetime = services.GetRequiredService<IHostApplicationLifetime>();
                return this;
            });

        public void Stop() => _lifetime?.StopApplication();

        public Task StartAsync(CancellationToken cancellationToken)
        {
            _lifetime!.ApplicationStarted.Register(() =>
            {
                var counter = _diagnostics!.Meter.CreateCounter<long>("nodemonitor.test.labels");
                for (var i = 0; i < count; i++)
                {
                    counter.Add(1, new KeyValuePair<string, object?>("value", $"v{i:D3}"));
                }

                _started.TrySetResult(_lifetime);
            });
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
