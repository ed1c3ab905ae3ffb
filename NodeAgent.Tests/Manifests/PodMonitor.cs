using k8s;
using k8s.Models;

namespace NodeAgent.Tests.Manifests;

/// <summary>
/// The part of the Prometheus Operator's PodMonitor (monitoring.coreos.com/v1) that components/podmonitor uses, so that
/// the strict YAML loader also rejects a misspelt field there.
/// </summary>
public sealed class PodMonitor : IKubernetesObject<V1ObjectMeta>
{
    public const string TypeKey = "monitoring.coreos.com/v1/PodMonitor";

    public string ApiVersion { get; set; } = "monitoring.coreos.com/v1";

    public string Kind { get; set; } = "PodMonitor";

    public V1ObjectMeta Metadata { get; set; } = new();

    public PodMonitorSpec Spec { get; set; } = new();
}

public sealed class PodMonitorSpec
{
    public V1LabelSelector? Selector { get; set; }

    public NamespaceSelector? NamespaceSelector { get; set; }

    public List<PodMetricsEndpoint> PodMetricsEndpoints { get; set; } = [];

    public string? JobLabel { get; set; }
}

public sealed class PodMetricsEndpoint : MetricsEndpoint;
