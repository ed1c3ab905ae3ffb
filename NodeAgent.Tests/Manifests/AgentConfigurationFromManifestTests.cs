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
    public void Cnpg_overlay_environment_loads_into_valid_agent_settings()
    {
        var values = HelmValues.Load(HelmValues.CnpgCluster);
        var secret = DatabaseSecrets.CnpgAppSecret(values);

        var settings = LoadSettings(fixture.Cnpg, DatabaseSecrets.CnpgAppSecretName(values), secret);

        AssertAgentBasics(fixture.Cnpg, settings);
        var connection = new NpgsqlConnectionStringBuilder(settings.ConnectionString);
        Assert.Equal(secret["host"], connection.Host);
        Assert.Equal(5432, connection.Port);
        Assert.Equal(values.Required("cluster.initdb.database"), connection.Database);
        Assert.Equal(values.Required("cluster.initdb.owner"), connection.Username);
        Assert.Equal(DatabaseSecrets.PlaceholderPassword, connection.Password);
        Assert.Equal(SslMode.Require, connection.SslMode);
    }

    [Fact]
    public void Bitnami_overlay_environment_loads_into_valid_agent_settings()
    {
        var values = HelmValues.Load(HelmValues.Bitnami);
        var settings = LoadSettings(fixture.Bitnami, DatabaseSecrets.BitnamiSecretName(values), DatabaseSecrets.BitnamiSecret(values));

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
        var hostMount = Assert.Single(rendered.AgentContainer.VolumeMounts, m => m.MountPath != "/tmp");
        Assert.True(hostMount.ReadOnlyProperty);
        Assert.Equal(hostMount.MountPath.TrimEnd('/'), settings.MountPath);
        Assert.False(settings.RunOnce, "the DaemonSet's agent must keep running");
        Assert.True(InventorySettings.Load(ToConfiguration(rendered.AgentEnvironment(_ => NodeName))).ScanInterval > TimeSpan.Zero);
    }

    private static AgentSettings LoadSettings(RenderedManifests rendered, string secretName, IReadOnlyDictionary<string, string> secret)
    {
        var environment = rendered.AgentEnvironment(source => Resolve(source, secretName, secret));
        return AgentSettings.Load(ToConfiguration(environment));
    }

    private static string Resolve(V1EnvVarSource source, string secretName, IReadOnlyDictionary<string, string> secret)
    {
        if (source.FieldRef is { } field)
        {
            Assert.Equal("spec.nodeName", field.FieldPath);
            return NodeName;
        }

        if (source.SecretKeyRef is { } reference)
        {
            Assert.Equal(secretName, reference.Name);
            Assert.True(secret.ContainsKey(reference.Key), $"the Secret {secretName} has no key '{reference.Key}'");
            return secret[reference.Key];
        }

        throw new Xunit.Sdk.XunitException("unexpected value source for the agent's environment (only fieldRef spec.nodeName and secretKeyRef are expected)");
    }

    /// <summary>Environment variables as .NET configuration reads them: `__` separates sections.</summary>
    private static IConfiguration ToConfiguration(IReadOnlyDictionary<string, string> environment) =>
        new ConfigurationBuilder()
            .AddInMemoryCollection(environment.Select(kv => new KeyValuePair<string, string?>(kv.Key.Replace("__", ":", StringComparison.Ordinal), kv.Value)))
            .Build();
}
