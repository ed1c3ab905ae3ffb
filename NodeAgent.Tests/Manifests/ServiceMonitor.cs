using k8s;
using k8s.Models;

namespace NodeAgent.Tests.Manifests;

/// <summary>
/// The part of the Prometheus Operator's ServiceMonitor (monitoring.coreos.com/v1) that the component uses, so that
/// the strict YAML loader also rejects a misspelt field there.
/// </summary>
public sealed class ServiceMonitor : IKubernetesObject<V1ObjectMeta>
{
    public const string TypeKey = "monitoring.coreos.com/v1/ServiceMonitor";

    public string ApiVersion { get; set; } = "monitoring.coreos.com/v1";

    public string Kind { get; set; } = "ServiceMonitor";

    public V1ObjectMeta Metadata { get; set; } = new();

    public ServiceMonitorSpec Spec { get; set; } = new();
}

public sealed class ServiceMonitorSpec
{
    public V1LabelSelector? Selector { get; set; }

    public NamespaceSelector? NamespaceSelector { get; set; }

    public List<ServiceMonitorEndpoint> Endpoints { get; set; } = [];

    public string? JobLabel { get; set; }
}

public sealed class NamespaceSelector
{
    public bool? Any { get; set; }

    public List<string> MatchNames { get; set; } = [];
}

public sealed class ServiceMonitorEndpoint : MetricsEndpoint
{
    public string? TargetPort { get; set; }
}

/// <summary>What a ServiceMonitor's endpoint and a PodMonitor's podMetricsEndpoint have in common.</summary>
public abstract class MetricsEndpoint
{
    public string? Port { get; set; }

    public string? Path { get; set; }

    public string? Scheme { get; set; }

    public string? Interval { get; set; }

    public string? ScrapeTimeout { get; set; }

    public List<RelabelConfig> Relabelings { get; set; } = [];

    public List<RelabelConfig> MetricRelabelings { get; set; } = [];
}

public sealed class RelabelConfig
{
    public List<string> SourceLabels { get; set; } = [];

    public string? Separator { get; set; }

    public string? TargetLabel { get; set; }

    public string? Regex { get; set; }

    public string? Replacement { get; set; }

    public string? Action { get; set; }
}
