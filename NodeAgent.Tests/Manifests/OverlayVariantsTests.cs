namespace NodeAgent.Tests.Manifests;

/// <summary>What differs between the renderings: which Secret holds the credentials, the ServiceMonitor, the non-root variant.</summary>
[Collection(ManifestsCollection.Name)]
public sealed class OverlayVariantsTests(ManifestsFixture fixture)
{
    [Fact]
    public void Cnpg_overlay_reads_every_connection_value_from_the_operator_secret()
    {
        var values = HelmValues.Load(HelmValues.CnpgCluster);
        var secretName = DatabaseSecrets.CnpgAppSecretName(values);
        var expectedKeys = new Dictionary<string, string>
        {
            ["PGHOST"] = "host", ["PGPORT"] = "port", ["PGDATABASE"] = "dbname", ["PGUSER"] = "username", ["PGPASSWORD"] = "password",
        };

        foreach (var (name, key) in expectedKeys)
        {
            var reference = fixture.Cnpg.AgentEnv(name).ValueFrom?.SecretKeyRef;
            Assert.NotNull(reference);
            Assert.Equal(secretName, reference.Name);
            Assert.Equal(key, reference.Key);
            Assert.Contains(reference.Key, DatabaseSecrets.CnpgAppSecretKeys);
        }

        // The Secret's uri keys are postgresql:// and jdbc: URIs, which Npgsql does not accept.
        Assert.DoesNotContain(fixture.Cnpg.AgentContainer.Env, e => e.ValueFrom?.SecretKeyRef?.Key is "uri" or "fqdn-uri" or "jdbc-uri" or "fqdn-jdbc-uri");
    }

    [Fact]
    public void Bitnami_overlay_reads_the_password_from_the_chart_secret_and_the_rest_from_the_values()
    {
        var values = HelmValues.Load(HelmValues.Bitnami);
        var rendered = fixture.Bitnami;

        var password = rendered.AgentEnv("PGPASSWORD").ValueFrom?.SecretKeyRef;
        Assert.NotNull(password);
        Assert.Equal(DatabaseSecrets.BitnamiSecretName(values), password.Name);
        Assert.Equal(values.Required("auth.secretKeys.userPasswordKey"), password.Key);

        Assert.Equal(values.Required("fullnameOverride"), rendered.AgentEnv("PGHOST").Value);
        Assert.Equal("5432", rendered.AgentEnv("PGPORT").Value);
        Assert.Equal(values.Required("auth.database"), rendered.AgentEnv("PGDATABASE").Value);
        Assert.Equal(values.Required("auth.username"), rendered.AgentEnv("PGUSER").Value);
        foreach (var name in new[] { "PGHOST", "PGPORT", "PGDATABASE", "PGUSER" })
        {
            Assert.Null(rendered.AgentEnv(name).ValueFrom);
        }

        // Nothing of the CloudNativePG install is referenced.
        Assert.DoesNotContain(DatabaseSecrets.CnpgAppSecretName(HelmValues.Load(HelmValues.CnpgCluster)), rendered.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void ServiceMonitor_component_scrapes_the_agent_service_metrics_port()
    {
        var rendered = fixture.WithServiceMonitor;
        var monitor = rendered.Single<ServiceMonitor>(RenderedManifests.AgentName);
        var service = rendered.AgentService;

        Assert.Equal(AgentOverlayTests.Namespace, monitor.Metadata.NamespaceProperty);
        var selector = monitor.Spec.Selector?.MatchLabels;
        Assert.NotNull(selector);
        Assert.NotEmpty(selector);
        Assert.All(selector, kv => Assert.Equal(kv.Value, service.Metadata.Labels[kv.Key]));
        Assert.Contains(AgentOverlayTests.Namespace, monitor.Spec.NamespaceSelector?.MatchNames ?? []);

        var endpoint = Assert.Single(monitor.Spec.Endpoints);
        Assert.Equal(Assert.Single(service.Spec.Ports).Name, endpoint.Port);
        Assert.Equal("/metrics", endpoint.Path);

        // The component adds the ServiceMonitor and nothing else; the default overlay has none.
        Assert.Equal(fixture.Cnpg.Objects.Count + 1, rendered.Objects.Count);
        Assert.Empty(fixture.Cnpg.All<ServiceMonitor>());
    }

    [Fact]
    public void NonRoot_component_runs_the_image_user_without_capabilities()
    {
        var pod = fixture.NonRoot.AgentPod;
        var container = fixture.NonRoot.AgentContainer;
        Assert.Equal(1654, container.SecurityContext?.RunAsUser ?? pod.SecurityContext?.RunAsUser);
        Assert.True(container.SecurityContext?.RunAsNonRoot ?? pod.SecurityContext?.RunAsNonRoot);
        Assert.Empty(container.SecurityContext?.Capabilities?.Add ?? []);
        Assert.Equal(new[] { "ALL" }, container.SecurityContext?.Capabilities?.Drop ?? []);

        // The default stays UID 0 with CAP_DAC_READ_SEARCH only (see README.md).
        Assert.Equal(0, fixture.Cnpg.AgentContainer.SecurityContext?.RunAsUser ?? fixture.Cnpg.AgentPod.SecurityContext?.RunAsUser);
    }
}
