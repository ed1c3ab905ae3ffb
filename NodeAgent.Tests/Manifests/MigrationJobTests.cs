using k8s.Models;

namespace NodeAgent.Tests.Manifests;

/// <summary>
/// The schema is migrated by the owner's role in a Job (overlay/migrate-job.yaml), so that the DaemonSet's role may only
/// read and insert.
/// </summary>
[Collection(ManifestsCollection.Name)]
public sealed class MigrationJobTests(ManifestsFixture fixture)
{
    public const string MigrateOnlyArgument = "--Agent:MigrateOnly=true";

    [Theory]
    [MemberData(nameof(AgentOverlayTests.Renderings), MemberType = typeof(AgentOverlayTests))]
    public void Migration_job_runs_the_agent_image_once_in_migrate_only_mode(string rendering)
    {
        var rendered = fixture.Get(rendering);
        var job = rendered.MigrationJob;
        var container = rendered.MigrationContainer;

        Assert.Equal(rendered.AgentContainer.Image, container.Image);
        Assert.Equal(rendered.AgentContainer.ImagePullPolicy, container.ImagePullPolicy);
        Assert.Null(container.Command); // the image's entrypoint is the agent
        Assert.Equal(new[] { MigrateOnlyArgument }, container.Args);

        Assert.Equal("Never", job.Spec.Template.Spec.RestartPolicy);
        Assert.InRange(job.Spec.BackoffLimit ?? 6, 1, 10); // retries while the database starts
        Assert.NotNull(job.Spec.ActiveDeadlineSeconds);
        Assert.NotNull(job.Spec.TtlSecondsAfterFinished);
    }

    [Theory]
    [MemberData(nameof(AgentOverlayTests.Renderings), MemberType = typeof(AgentOverlayTests))]
    public void Migration_job_is_not_part_of_the_agents_daemonset_service_or_pod_monitor(string rendering)
    {
        var rendered = fixture.Get(rendering);
        var labels = rendered.MigrationJob.Spec.Template.Metadata.Labels ?? new Dictionary<string, string>();
        bool Matches(IDictionary<string, string> selector) => selector.All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value);

        Assert.False(Matches(rendered.Agent.Spec.Selector.MatchLabels), "the DaemonSet's selector must not select the Job's pod");
        Assert.False(Matches(rendered.AgentService.Spec.Selector), "the Service must not route to the Job's pod");
        foreach (var monitor in rendered.All<PodMonitor>())
        {
            Assert.False(Matches(monitor.Spec.Selector!.MatchLabels), "the PodMonitor must not scrape the Job's pod");
        }
    }

    [Theory]
    [MemberData(nameof(AgentOverlayTests.Renderings), MemberType = typeof(AgentOverlayTests))]
    public void Migration_job_pod_is_unprivileged_and_sees_nothing_of_the_host(string rendering)
    {
        var rendered = fixture.Get(rendering);
        var pod = rendered.MigrationJob.Spec.Template.Spec;
        var security = rendered.MigrationContainer.SecurityContext;
        Assert.NotNull(security);

        Assert.False(pod.AutomountServiceAccountToken ?? true, "automountServiceAccountToken must be false");
        Assert.DoesNotContain(pod.Volumes ?? [], v => v.HostPath is not null);
        Assert.NotEqual(true, pod.HostNetwork);
        Assert.NotEqual(true, pod.HostPID);
        Assert.True(security.RunAsNonRoot ?? pod.SecurityContext?.RunAsNonRoot);
        Assert.NotEqual(0, security.RunAsUser ?? pod.SecurityContext?.RunAsUser);
        Assert.True(security.ReadOnlyRootFilesystem);
        Assert.False(security.AllowPrivilegeEscalation ?? true);
        Assert.NotEqual(true, security.Privileged);
        Assert.Equal(new[] { "ALL" }, security.Capabilities?.Drop ?? []);
        Assert.Empty(security.Capabilities?.Add ?? []);
        Assert.Equal("RuntimeDefault", security.SeccompProfile?.Type ?? pod.SecurityContext?.SeccompProfile?.Type);
        Assert.NotNull(rendered.MigrationContainer.Resources?.Limits?["memory"]);
    }

    [Fact]
    public void Cnpg_migration_job_connects_as_the_owner_and_verifies_the_server_like_the_agent()
    {
        var values = HelmValues.Load(HelmValues.CnpgCluster);
        var rendered = fixture.Cnpg;
        var env = rendered.MigrationContainer.Env;
        var expectedKeys = new Dictionary<string, string>
        {
            ["PGHOST"] = "host", ["PGPORT"] = "port", ["PGDATABASE"] = "dbname", ["PGUSER"] = "username", ["PGPASSWORD"] = "password",
        };
        foreach (var (name, key) in expectedKeys)
        {
            var reference = Assert.Single(env, e => e.Name == name).ValueFrom?.SecretKeyRef;
            Assert.NotNull(reference);
            Assert.Equal(DatabaseSecrets.CnpgAppSecretName(values), reference.Name); // the owner's Secret
            Assert.Equal(key, reference.Key);
        }

        foreach (var name in new[] { "PGSSLMODE", "PGSSLROOTCERT" })
        {
            Assert.Equal(rendered.AgentEnv(name).Value, Assert.Single(env, e => e.Name == name).Value);
        }
    }

    [Fact]
    public void Bitnami_migration_job_uses_the_same_single_user_connection_as_the_agent()
    {
        var rendered = fixture.Bitnami;
        var job = rendered.MigrationContainer;
        var agentEnvironment = rendered.AgentEnvironment(s => $"{s.SecretKeyRef?.Name}/{s.SecretKeyRef?.Key}");
        var jobEnvironment = rendered.ContainerEnvironment(job, s => $"{s.SecretKeyRef?.Name}/{s.SecretKeyRef?.Key}");
        foreach (var name in new[] { "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSSLMODE" })
        {
            Assert.Equal(agentEnvironment[name], jobEnvironment[name]);
        }

        // Nothing of CloudNativePG (its CA Secret) is left in the Bitnami rendering.
        Assert.DoesNotContain("monitor-pg", rendered.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("PGSSLROOTCERT", rendered.Text, StringComparison.Ordinal);
    }
}
