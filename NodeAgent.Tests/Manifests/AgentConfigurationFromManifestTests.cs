using k8s.Models;
using Microsoft.Extensions.Configuration;
using NodeAgent.Inventory;
using NodeAgent.Shared.Configuration;
using Npgsql;

namespace NodeAgent.Tests.Manifests;

/// <summary>
/// The environment the rendered DaemonSet gives the agent, loaded the way the agent loads it (environment variables,
/// `A__B` is the key `A:B`) and validated by the agent's own <see cref="AgentSettings.Load"/>: proves that the variable
/// names the manifests set are the ones the agent binds, and that they are enough for it to start.
/// </summary>
[Collection(ManifestsCollection.Name)]
public sealed class AgentConfigurationFromManifestTests(ManifestsFixture fixture)
{
    private const string NodeName = "node-a";

    [Fact]
    public void Cnpg_overlay_environment_loads_into_valid_agent_settings_as_the_agent_role_verifying_the_server()
    {
        var values = HelmValues.Load(HelmValues.CnpgCluster);
        var app = DatabaseSecrets.CnpgAppSecret(values);
        var secrets = new Dictionary<string, IReadOnlyDictionary<string, string>>
        {
            [DatabaseSecrets.CnpgAppSecretName(values)] = app,
            [DatabaseSecrets.CnpgAgentSecretName(values)] = DatabaseSecrets.CnpgAgentSecret(values),
        };

        using var ca = new MountedCaStandIn(fixture.Cnpg, fixture.Cnpg.AgentPod, fixture.Cnpg.AgentContainer);
        var settings = AgentSettings.Load(ToConfiguration(ca.Apply(fixture.Cnpg.AgentEnvironment(source => Resolve(source, secrets)))));

        AssertAgentBasics(fixture.Cnpg, settings);
        Assert.False(settings.MigrateOnly);
        var connection = new NpgsqlConnectionStringBuilder(settings.ConnectionString);
        Assert.Equal(app["host"], connection.Host);
        Assert.Equal(5432, connection.Port);
        Assert.Equal(values.Required("cluster.initdb.database"), connection.Database);
        Assert.Equal(DatabaseSecrets.AgentRole, connection.Username);
        Assert.NotEqual(values.Required("cluster.initdb.owner"), connection.Username);
        Assert.Equal(DatabaseSecrets.PlaceholderPassword, connection.Password);
        Assert.Equal(SslMode.VerifyFull, connection.SslMode);
        Assert.Equal(ca.Path, connection.RootCertificate);
    }

    [Fact]
    public void Cnpg_migration_job_environment_loads_into_migrate_only_settings_as_the_owner()
    {
        var values = HelmValues.Load(HelmValues.CnpgCluster);
        var app = DatabaseSecrets.CnpgAppSecret(values);
        var secrets = new Dictionary<string, IReadOnlyDictionary<string, string>> { [DatabaseSecrets.CnpgAppSecretName(values)] = app };
        var rendered = fixture.Cnpg;
        var job = rendered.MigrationContainer;

        using var ca = new MountedCaStandIn(rendered, rendered.MigrationJob.Spec.Template.Spec, job);
        var environment = ca.Apply(rendered.ContainerEnvironment(job, source => Resolve(source, secrets)));
        var configuration = new ConfigurationBuilder()
            .AddConfiguration(ToConfiguration(environment))
            .AddCommandLine([.. job.Args ?? [], .. job.Command?.Skip(1) ?? []])
            .Build();
        var settings = AgentSettings.Load(configuration);

        Assert.True(settings.MigrateOnly, "the Job must run the agent with --Agent:MigrateOnly=true");
        Assert.False(settings.RunOnce);
        var connection = new NpgsqlConnectionStringBuilder(settings.ConnectionString);
        Assert.Equal(app["host"], connection.Host);
        Assert.Equal(values.Required("cluster.initdb.database"), connection.Database);
        Assert.Equal(values.Required("cluster.initdb.owner"), connection.Username);
        Assert.Equal(SslMode.VerifyFull, connection.SslMode);
        Assert.Equal(ca.Path, connection.RootCertificate);
    }

    [Fact]
    public void Bitnami_overlay_environment_loads_into_valid_agent_settings()
    {
        var values = HelmValues.Load(HelmValues.Bitnami);
        var secrets = new Dictionary<string, IReadOnlyDictionary<string, string>> { [DatabaseSecrets.BitnamiSecretName(values)] = DatabaseSecrets.BitnamiSecret(values) };
        var settings = AgentSettings.Load(ToConfiguration(fixture.Bitnami.AgentEnvironment(source => Resolve(source, secrets))));

        AssertAgentBasics(fixture.Bitnami, settings);
        var connection = new NpgsqlConnectionStringBuilder(settings.ConnectionString);
        Assert.Equal(values.Required("fullnameOverride"), connection.Host);
        Assert.Equal(5432, connection.Port);
        Assert.Equal(values.Required("auth.database"), connection.Database);
        Assert.Equal(values.Required("auth.username"), connection.Username);
        Assert.Equal(DatabaseSecrets.PlaceholderPassword, connection.Password);
    }

    [Fact]
    public void Without_the_secret_the_agent_refuses_to_start_and_names_the_setting()
    {
        // The rendered environment minus the Secret's values: nothing else (no literal connection string) may stand in.
        var environment = fixture.Cnpg.AgentEnvironment(source => source.SecretKeyRef is not null ? "" : NodeName);
        var error = Assert.Throws<AgentConfigurationException>(() => AgentSettings.Load(ToConfiguration(environment)));
        Assert.Contains("PGHOST", error.Message, StringComparison.Ordinal);
    }

    private static void AssertAgentBasics(RenderedManifests rendered, AgentSettings settings)
    {
        Assert.Equal(NodeName, settings.NodeName);
        var hostVolume = Assert.Single(rendered.AgentPod.Volumes, v => v.HostPath is not null);
        var hostMount = Assert.Single(rendered.AgentContainer.VolumeMounts, m => m.Name == hostVolume.Name);
        Assert.True(hostMount.ReadOnlyProperty);
        Assert.Equal(hostMount.MountPath.TrimEnd('/'), settings.MountPath);
        Assert.False(settings.RunOnce, "the DaemonSet's agent must keep running");
        Assert.True(InventorySettings.Load(ToConfiguration(rendered.AgentEnvironment(_ => NodeName))).ScanInterval > TimeSpan.Zero);
    }

    private static string Resolve(V1EnvVarSource source, IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> secrets)
    {
        if (source.FieldRef is { } field)
        {
            Assert.Equal("spec.nodeName", field.FieldPath);
            return NodeName;
        }

        if (source.SecretKeyRef is { } reference)
        {
            Assert.True(secrets.TryGetValue(reference.Name, out var secret), $"unexpected Secret {reference.Name} (expected one of {string.Join(", ", secrets.Keys)})");
            Assert.True(secret.ContainsKey(reference.Key), $"the Secret {reference.Name} has no key '{reference.Key}'");
            return secret[reference.Key];
        }

        throw new Xunit.Sdk.XunitException("unexpected value source for the agent's environment (only fieldRef spec.nodeName and secretKeyRef are expected)");
    }

    /// <summary>Environment variables as .NET configuration reads them: `__` separates sections.</summary>
    private static IConfiguration ToConfiguration(IReadOnlyDictionary<string, string> environment) =>
        new ConfigurationBuilder()
            .AddInMemoryCollection(environment.Select(kv => new KeyValuePair<string, string?>(kv.Key.Replace("__", ":", StringComparison.Ordinal), kv.Value)))
            .Build();

    /// <summary>
    /// Stands in for the CA Secret volume the kubelet will mount: PGSSLROOTCERT must name a file of a read-only Secret volume
    /// (checked here); the agent, which refuses a root certificate that does not exist, is handed a placeholder file instead.
    /// </summary>
    private sealed class MountedCaStandIn : IDisposable
    {
        private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("nodeagent-ca-");
        private readonly string _manifestPath;

        public MountedCaStandIn(RenderedManifests rendered, V1PodSpec pod, V1Container container)
        {
            _manifestPath = rendered.ContainerEnvironment(container, _ => "")["PGSSLROOTCERT"];
            var mount = Assert.Single(container.VolumeMounts, m => _manifestPath.StartsWith(m.MountPath.TrimEnd('/') + "/", StringComparison.Ordinal));
            Assert.True(mount.ReadOnlyProperty);
            var volume = Assert.Single(pod.Volumes, v => v.Name == mount.Name);
            Assert.NotNull(volume.Secret);
            var relative = _manifestPath[(mount.MountPath.TrimEnd('/').Length + 1)..];
            Assert.Contains(volume.Secret.Items ?? [], item => item.Path == relative);
            Path = System.IO.Path.Combine(_directory.FullName, relative);
            File.WriteAllText(Path, "-----BEGIN CERTIFICATE-----\nplaceholder\n-----END CERTIFICATE-----\n");
        }

        public string Path { get; }

        public IReadOnlyDictionary<string, string> Apply(IReadOnlyDictionary<string, string> environment)
        {
            Assert.Equal(_manifestPath, environment["PGSSLROOTCERT"]);
            return environment.ToDictionary(kv => kv.Key, kv => kv.Key == "PGSSLROOTCERT" ? Path : kv.Value, StringComparer.Ordinal);
        }

        public void Dispose() => _directory.Delete(recursive: true);
    }
}
