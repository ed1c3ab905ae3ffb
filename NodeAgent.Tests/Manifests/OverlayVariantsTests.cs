namespace NodeAgent.Tests.Manifests;

/// <summary>What differs between the renderings: which Secret holds the credentials, the ServiceMonitor, the non-root variant.</summary>
[Collection(ManifestsCollection.Name)]
public sealed class OverlayVariantsTests(ManifestsFixture fixture)
{
    /// <summary>The Helm release name of a default kube-prometheus-stack install, which its Prometheus selects monitors by.</summary>
    public const string KubePrometheusStackRelease = "kube-prometheus-stack";

    [Fact]
    public void Cnpg_overlay_reads_the_database_from_the_operator_secret_and_logs_in_as_the_agent_role()
    {
        var values = HelmValues.Load(HelmValues.CnpgCluster);
        var appSecret = DatabaseSecrets.CnpgAppSecretName(values);
        var agentSecret = DatabaseSecrets.CnpgAgentSecretName(values);
        var expected = new Dictionary<string, (string Secret, string Key)>
        {
            ["PGHOST"] = (appSecret, "host"), ["PGPORT"] = (appSecret, "port"), ["PGDATABASE"] = (appSecret, "dbname"),
            ["PGUSER"] = (agentSecret, "username"), ["PGPASSWORD"] = (agentSecret, "password"),
        };

        foreach (var (name, (secret, key)) in expected)
        {
            var reference = fixture.Cnpg.AgentEnv(name).ValueFrom?.SecretKeyRef;
            Assert.NotNull(reference);
            Assert.Equal(secret, reference.Name);
            Assert.Equal(key, reference.Key);
            Assert.Contains(reference.Key, secret == appSecret ? DatabaseSecrets.CnpgAppSecretKeys : DatabaseSecrets.CnpgAgentSecret(values).Keys);
        }

        // Not the owner's login: the owner's Secret gives the agent its host, port and database only.
        Assert.DoesNotContain(fixture.Cnpg.AgentContainer.Env, e => e.ValueFrom?.SecretKeyRef is { } r && r.Name == appSecret && r.Key is "username" or "user" or "password" or "pgpass");
        Assert.NotEqual(appSecret, agentSecret);

        // The Secret's uri keys are postgresql:// and jdbc: URIs, which Npgsql does not accept.
        Assert.DoesNotContain(fixture.Cnpg.AgentContainer.Env, e => e.ValueFrom?.SecretKeyRef?.Key is "uri" or "fqdn-uri" or "jdbc-uri" or "fqdn-jdbc-uri");
    }

    [Fact]
    public void Cnpg_overlay_verifies_the_server_certificate_against_the_cluster_ca()
    {
        var values = HelmValues.Load(HelmValues.CnpgCluster);
        var rendered = fixture.Cnpg;
        Assert.Equal("verify-full", rendered.AgentEnv("PGSSLMODE").Value);

        // PGSSLROOTCERT names the ca.crt of CloudNativePG's CA Secret, mounted read-only, and only that key (never ca.key).
        var rootCertificate = rendered.AgentEnv("PGSSLROOTCERT").Value;
        var mount = Assert.Single(rendered.AgentContainer.VolumeMounts, m => rootCertificate.StartsWith(m.MountPath.TrimEnd('/') + "/", StringComparison.Ordinal));
        Assert.True(mount.ReadOnlyProperty);
        var secret = Assert.Single(rendered.AgentPod.Volumes, v => v.Name == mount.Name).Secret;
        Assert.NotNull(secret);
        Assert.Equal(DatabaseSecrets.CnpgCaSecretName(values), secret.SecretName);
        var item = Assert.Single(secret.Items);
        Assert.Equal("ca.crt", item.Key);
        Assert.Equal(mount.MountPath.TrimEnd('/') + "/" + item.Path, rootCertificate);
        Assert.NotEqual(true, secret.Optional);

        // verify-full: the host the agent dials (the Secret's `host`) is one of the names in the server certificate.
        var host = DatabaseSecrets.CnpgAppSecret(values)[rendered.AgentEnv("PGHOST").ValueFrom!.SecretKeyRef!.Key];
        Assert.Contains(host, DatabaseSecrets.CnpgServerCertificateNames(values, AgentOverlayTests.Namespace));
        Assert.EndsWith("-rw", host, StringComparison.Ordinal); // the primary
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
    public void ServiceMonitor_is_selected_by_a_default_kube_prometheus_stack()
    {
        var monitor = fixture.WithServiceMonitor.Single<ServiceMonitor>(RenderedManifests.AgentName);
        Assert.Equal(KubePrometheusStackRelease, monitor.Metadata.Labels.ValueOrNull("release"));
    }

    [Fact]
    public void PodMonitor_component_scrapes_the_agent_pods_metrics_port_without_the_service()
    {
        var rendered = fixture.WithPodMonitor;
        var monitor = rendered.Single<PodMonitor>(RenderedManifests.AgentName);

        Assert.Equal(AgentOverlayTests.Namespace, monitor.Metadata.NamespaceProperty);
        Assert.Equal(KubePrometheusStackRelease, monitor.Metadata.Labels.ValueOrNull("release"));
        var selector = monitor.Spec.Selector?.MatchLabels;
        Assert.NotNull(selector);
        Assert.NotEmpty(selector);
        Assert.All(selector, kv => Assert.Equal(kv.Value, rendered.Agent.Spec.Template.Metadata.Labels[kv.Key]));
        Assert.Contains(AgentOverlayTests.Namespace, monitor.Spec.NamespaceSelector?.MatchNames ?? []);

        var endpoint = Assert.Single(monitor.Spec.PodMetricsEndpoints);
        Assert.Contains(rendered.AgentContainer.Ports, p => p.Name == endpoint.Port);
        Assert.Equal("/metrics", endpoint.Path);
        Assert.Contains(endpoint.Relabelings, r => r.SourceLabels.Contains("__meta_kubernetes_pod_node_name") && r.TargetLabel == "node");

        // The component adds the PodMonitor and nothing else.
        Assert.Equal(fixture.Cnpg.Objects.Count + 1, rendered.Objects.Count);
        Assert.Empty(fixture.Cnpg.All<PodMonitor>());
        Assert.Empty(rendered.All<ServiceMonitor>());
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

        // The default stays UID 0 (see README.md).
        Assert.Equal(0, fixture.Cnpg.AgentContainer.SecurityContext?.RunAsUser ?? fixture.Cnpg.AgentPod.SecurityContext?.RunAsUser);
        // Without capabilities there is no process activity, nor the host's PIDs.
        Assert.NotEqual(true, pod.HostPID);
        Assert.False(AgentOverlayTests.RecordsProcesses(fixture.NonRoot));
    }

    [Fact]
    public void NoProcesses_component_drops_the_host_pids_and_the_capabilities_of_process_activity_and_nothing_else()
    {
        var rendered = fixture.NoProcesses;
        Assert.NotEqual(true, rendered.AgentPod.HostPID);
        Assert.Equal(new[] { "DAC_READ_SEARCH" }, rendered.AgentContainer.SecurityContext?.Capabilities?.Add ?? []);
        Assert.Equal("false", rendered.AgentLiteralEnvironment()["Agent__Processes__Enabled"]);
        Assert.Equal(fixture.Cnpg.Objects.Count, rendered.Objects.Count);

        // The default records process activity with the host's PIDs.
        Assert.True(fixture.Cnpg.AgentPod.HostPID);
        Assert.True(AgentOverlayTests.RecordsProcesses(fixture.Cnpg));
    }
}
