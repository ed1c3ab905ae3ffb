namespace NodeAgent.Tests.Manifests;

/// <summary>Renders each overlay once for all manifest tests (kubectl runs as a child process).</summary>
public sealed class ManifestsFixture
{
    public const string Overlay = "aspirate-output/overlay";
    public const string BitnamiOverlay = "aspirate-output/overlay-bitnami";
    public const string ServiceMonitorOverlay = "aspirate-output/overlay-servicemonitor";
    public const string ServiceMonitorComponent = "aspirate-output/components/servicemonitor";
    public const string NonRootComponent = "aspirate-output/components/non-root";
    public const string PodMonitorComponent = "aspirate-output/components/podmonitor";
    public const string NoProcessesComponent = "aspirate-output/components/no-processes";

    private readonly Lazy<RenderedManifests> _cnpg = new(() => new RenderedManifests(Overlay, Kustomize.Render(Overlay)));
    private readonly Lazy<RenderedManifests> _bitnami = new(() => new RenderedManifests(BitnamiOverlay, Kustomize.Render(BitnamiOverlay)));
    private readonly Lazy<RenderedManifests> _serviceMonitor = new(() => new RenderedManifests(ServiceMonitorOverlay, Kustomize.Render(ServiceMonitorOverlay)));
    private readonly Lazy<RenderedManifests> _nonRoot = new(() => new RenderedManifests(
        "overlay + components/non-root", Kustomize.RenderComposition([Overlay], [NonRootComponent])));
    private readonly Lazy<RenderedManifests> _podMonitor = new(() => new RenderedManifests(
        "overlay + components/podmonitor", Kustomize.RenderComposition([Overlay], [PodMonitorComponent])));

    private readonly Lazy<RenderedManifests> _noProcesses = new(() => new RenderedManifests(
        "overlay + components/no-processes", Kustomize.RenderComposition([Overlay], [NoProcessesComponent])));

    /// <summary>The default: aspirate-output/overlay, with PostgreSQL from CloudNativePG.</summary>
    public RenderedManifests Cnpg => _cnpg.Value;

    public RenderedManifests Bitnami => _bitnami.Value;

    public RenderedManifests WithServiceMonitor => _serviceMonitor.Value;

    public RenderedManifests NonRoot => _nonRoot.Value;

    public RenderedManifests WithPodMonitor => _podMonitor.Value;

    public RenderedManifests NoProcesses => _noProcesses.Value;

    public RenderedManifests Get(string name) => name switch
    {
        nameof(Cnpg) => Cnpg,
        nameof(Bitnami) => Bitnami,
        nameof(WithServiceMonitor) => WithServiceMonitor,
        nameof(NonRoot) => NonRoot,
        nameof(WithPodMonitor) => WithPodMonitor,
        nameof(NoProcesses) => NoProcesses,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "unknown rendering"),
    };
}

[CollectionDefinition(Name)]
public sealed class ManifestsCollection : ICollectionFixture<ManifestsFixture>
{
    public const string Name = "Rendered manifests";
}
