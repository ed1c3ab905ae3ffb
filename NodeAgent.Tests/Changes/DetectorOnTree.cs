using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using NodeAgent.Changes;
using NodeAgent.Shared.Telemetry;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Changes;

/// <summary>The file-change detector alone on a temporary tree (default settings), with its clock in the test's hands.</summary>
internal sealed class DetectorOnTree : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly AgentDiagnostics _diagnostics;

    public DetectorOnTree()
    {
        _diagnostics = new AgentDiagnostics(_services.GetRequiredService<IMeterFactory>());
        Detector = new ChangeDetector(ChangesSettings.Load(new ConfigurationBuilder().Build()), "node", Tree.Root, new ChangesMetrics(_diagnostics),
            Time, NullLogger.Instance);
    }

    public TempTree Tree { get; } = new();

    public FakeTimeProvider Time { get; } = new();

    public ChangeDetector Detector { get; }

    public void Dispose()
    {
        Detector.Dispose();
        _diagnostics.Dispose();
        _services.Dispose();
        Tree.Dispose();
    }
}
