using System.Text.RegularExpressions;

namespace NodeAgent.Tests.Manifests;

/// <summary>The committed Helm values: valid YAML, no committed password, and names that match what the overlays read.</summary>
public sealed partial class HelmValuesTests
{
    public static TheoryData<string> ValuesFiles => [HelmValues.CnpgOperator, HelmValues.CnpgCluster, HelmValues.Bitnami];

    [Theory]
    [MemberData(nameof(ValuesFiles))]
    public void Values_file_parses_and_commits_no_password(string path)
    {
        var values = HelmValues.Load(path);
        Assert.All(values.Scalars(), scalar =>
        {
            if (PasswordKey().IsMatch(scalar.Path.Split('.')[^1]))
            {
                Assert.True(scalar.Value.Length == 0, $"{path}: {scalar.Path} must stay empty (passwords are generated in the cluster)");
            }
        });
    }

    [Fact]
    public void Cnpg_cluster_creates_the_database_and_owner_the_agent_expects()
    {
        var values = HelmValues.Load(HelmValues.CnpgCluster);
        Assert.Equal("monitor-pg", DatabaseSecrets.CnpgClusterName(values));
        Assert.Equal("monitordb", values.Required("cluster.initdb.database"));
        Assert.Equal("monitor", values.Required("cluster.initdb.owner"));
        Assert.Equal("standalone", values.Required("mode"));
        Assert.Null(values.Scalar("cluster.initdb.secret.name")); // the operator generates the -app Secret
        Assert.True(string.IsNullOrEmpty(values.Scalar("namespaceOverride")) || values.Scalar("namespaceOverride") == AgentOverlayTests.Namespace);
    }

    [Fact]
    public void Bitnami_values_use_the_legacy_images_and_the_names_overlay_bitnami_reads()
    {
        var values = HelmValues.Load(HelmValues.Bitnami);
        Assert.Equal("true", values.Required("global.security.allowInsecureImages"));
        Assert.StartsWith("bitnamilegacy/", values.Required("image.repository"), StringComparison.Ordinal);
        Assert.StartsWith("bitnamilegacy/", values.Required("volumePermissions.image.repository"), StringComparison.Ordinal);
        Assert.StartsWith("bitnamilegacy/", values.Required("metrics.image.repository"), StringComparison.Ordinal);
        Assert.NotEqual("latest", values.Required("image.tag"));
        Assert.Equal("standalone", values.Required("architecture"));
        Assert.Equal("monitor-postgresql", values.Required("fullnameOverride"));
        Assert.Equal("monitordb", values.Required("auth.database"));
        Assert.Equal("monitor", values.Required("auth.username"));
        Assert.Equal("password", values.Required("auth.secretKeys.userPasswordKey"));
    }

    [Fact]
    public void Every_helm_install_command_pins_a_chart_version()
    {
        var files = new[] { "README.md", HelmValues.CnpgOperator, HelmValues.CnpgCluster, HelmValues.Bitnami };
        var commands = files
            .SelectMany(f => JoinContinuations(File.ReadAllLines(RepositoryRoot.Combine(f.Split('/')))))
            .Where(l => HelmInstall().IsMatch(l))
            .ToList();

        Assert.NotEmpty(commands);
        Assert.All(commands, c => Assert.Matches(@"--version\s+\d+\.\d+\.\d+", c));
    }

    private static IEnumerable<string> JoinContinuations(IEnumerable<string> lines)
    {
        var current = "";
        foreach (var raw in lines)
        {
            var line = raw.TrimStart('#', ' ');
            if (line.EndsWith('\\'))
            {
                current += line[..^1] + " ";
                continue;
            }

            yield return current + line;
            current = "";
        }
    }

    [GeneratedRegex(@"helm\s+(upgrade\s+--install|install)\s")]
    private static partial Regex HelmInstall();

    [GeneratedRegex(@"^(password|postgresPassword|replicationPassword|adminPassword|superuserPassword)$", RegexOptions.IgnoreCase)]
    private static partial Regex PasswordKey();
}
