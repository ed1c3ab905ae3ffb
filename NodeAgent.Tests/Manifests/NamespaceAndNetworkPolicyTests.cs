using k8s.Models;

namespace NodeAgent.Tests.Manifests;

/// <summary>The namespace's Pod Security Admission levels, and what the agent's pods may send and receive.</summary>
[Collection(ManifestsCollection.Name)]
public sealed class NamespaceAndNetworkPolicyTests(ManifestsFixture fixture)
{
    public const int MetricsPort = 9090;
    public const int PostgresPort = 5432;

    [Theory]
    [MemberData(nameof(AgentOverlayTests.Renderings), MemberType = typeof(AgentOverlayTests))]
    public void Namespace_admits_the_privileged_agent_but_warns_and_audits_against_baseline(string rendering)
    {
        var ns = fixture.Get(rendering).Single<V1Namespace>(AgentOverlayTests.Namespace);
        var labels = ns.Metadata.Labels ?? new Dictionary<string, string>();

        // hostPath and CAP_DAC_READ_SEARCH are not allowed by baseline: enforce must be privileged ...
        Assert.Equal("privileged", labels.ValueOrNull("pod-security.kubernetes.io/enforce"));
        // ... and every deviation from baseline is still reported (kubectl warnings, audit log).
        Assert.Equal("baseline", labels.ValueOrNull("pod-security.kubernetes.io/warn"));
        Assert.Equal("baseline", labels.ValueOrNull("pod-security.kubernetes.io/audit"));
    }

    [Theory]
    [MemberData(nameof(AgentOverlayTests.Renderings), MemberType = typeof(AgentOverlayTests))]
    public void Namespace_does_not_carry_the_agents_common_labels(string rendering)
    {
        // The namespace also holds the database: a selector for the agent's objects must never select it.
        var ns = fixture.Get(rendering).Single<V1Namespace>(AgentOverlayTests.Namespace);
        Assert.DoesNotContain(ns.Metadata.Labels ?? new Dictionary<string, string>(), kv => kv.Key.StartsWith("app.kubernetes.io/", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(AgentOverlayTests.Renderings), MemberType = typeof(AgentOverlayTests))]
    public void NetworkPolicy_covers_the_agent_and_the_migration_job_in_both_directions(string rendering)
    {
        var rendered = fixture.Get(rendering);
        var policy = rendered.Single<V1NetworkPolicy>(RenderedManifests.AgentName);
        Assert.Equal(new[] { "Egress", "Ingress" }, (policy.Spec.PolicyTypes ?? []).Order(StringComparer.Ordinal));

        Assert.True(Selects(policy.Spec.PodSelector, rendered.Agent.Spec.Template.Metadata.Labels), "the policy must select the agent's pods");
        Assert.True(Selects(policy.Spec.PodSelector, rendered.MigrationJob.Spec.Template.Metadata.Labels), "the policy must select the migration Job's pod");
    }

    [Theory]
    [MemberData(nameof(AgentOverlayTests.Renderings), MemberType = typeof(AgentOverlayTests))]
    public void NetworkPolicy_admits_only_the_metrics_port_and_only_from_inside_the_cluster(string rendering)
    {
        var rendered = fixture.Get(rendering);
        var policy = rendered.Single<V1NetworkPolicy>(RenderedManifests.AgentName);

        var rule = Assert.Single(policy.Spec.Ingress);
        var port = Assert.Single(rule.Ports);
        Assert.Equal(MetricsPort.ToString(System.Globalization.CultureInfo.InvariantCulture), port.Port?.Value);
        Assert.Equal("TCP", port.Protocol ?? "TCP");
        Assert.Null(port.EndPort);
        Assert.Equal(MetricsPort, Assert.Single(rendered.AgentContainer.Ports, p => p.Name == "metrics").ContainerPort);

        // Peers are pods (a namespace selector), never an ipBlock that would admit addresses outside the cluster.
        Assert.NotEmpty(rule.FromProperty);
        Assert.All(rule.FromProperty, peer =>
        {
            Assert.Null(peer.IpBlock);
            Assert.NotNull(peer.NamespaceSelector);
        });
    }

    [Theory]
    [MemberData(nameof(AgentOverlayTests.Renderings), MemberType = typeof(AgentOverlayTests))]
    public void NetworkPolicy_lets_the_agent_reach_only_its_PostgreSQL_and_the_cluster_DNS(string rendering)
    {
        var rendered = fixture.Get(rendering);
        var policy = rendered.Single<V1NetworkPolicy>(RenderedManifests.AgentName);
        Assert.Equal(2, policy.Spec.Egress.Count);

        // PostgreSQL: the database pods by label, in this namespace (no namespace selector), port 5432 only.
        var database = Assert.Single(policy.Spec.Egress, r => r.Ports.Any(p => p.Port?.Value == "5432"));
        Assert.Equal("TCP", Assert.Single(database.Ports).Protocol ?? "TCP");
        var databasePeer = Assert.Single(database.To);
        Assert.Null(databasePeer.NamespaceSelector);
        Assert.Null(databasePeer.IpBlock);
        var expected = rendering == nameof(ManifestsFixture.Bitnami)
            ? new Dictionary<string, string> { ["app.kubernetes.io/name"] = "postgresql", ["app.kubernetes.io/instance"] = "monitor" }
            : new Dictionary<string, string> { ["cnpg.io/cluster"] = DatabaseSecrets.CnpgClusterName(HelmValues.Load(HelmValues.CnpgCluster)) };
        Assert.Equal(expected, databasePeer.PodSelector?.MatchLabels);

        // DNS: kube-dns in kube-system, port 53 over UDP and TCP.
        var dns = Assert.Single(policy.Spec.Egress, r => r != database);
        Assert.Equal(new[] { "TCP", "UDP" }, dns.Ports.Select(p => p.Protocol).Order(StringComparer.Ordinal));
        Assert.All(dns.Ports, p => Assert.Equal("53", p.Port?.Value));
        var dnsPeer = Assert.Single(dns.To);
        Assert.Equal("kube-system", dnsPeer.NamespaceSelector?.MatchLabels?["kubernetes.io/metadata.name"]);
        Assert.Equal("kube-dns", dnsPeer.PodSelector?.MatchLabels?["k8s-app"]);
    }

    private static bool Selects(V1LabelSelector selector, IDictionary<string, string> labels)
    {
        Assert.Null(selector.MatchExpressions);
        Assert.NotEmpty(selector.MatchLabels);
        return selector.MatchLabels.All(kv => labels.TryGetValue(kv.Key, out var value) && value == kv.Value);
    }
}
