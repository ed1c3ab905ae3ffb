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
    public void Cnpg_cluster_declares_a_login_role_for_the_agent_that_is_not_the_owner()
    {
        var values = HelmValues.Load(HelmValues.CnpgCluster);
        var role = DatabaseSecrets.CnpgAgentRole(values);

        Assert.NotEqual(values.Required("cluster.initdb.owner"), role.Required("name"));
        Assert.Equal("present", role.Scalar("ensure") ?? "present");
        Assert.Equal("true", role.Required("login"));
        foreach (var attribute in new[] { "superuser", "createdb", "createrole", "replication", "bypassrls" })
        {
            Assert.True(role.Scalar(attribute) is null or "false", $"the agent's role must not have {attribute}");
        }

        Assert.Empty(role.Strings("inRoles")); // no membership that would bring other privileges

        // The password comes from a basic-auth Secret in the cluster, which the DaemonSet reads too; none is committed.
        var secretName = role.Required("passwordSecret.name");
        Assert.NotEqual(DatabaseSecrets.CnpgAppSecretName(values), secretName);
        Assert.Null(role.Scalar("password"));
    }

    [Fact]
    public void Cnpg_cluster_grants_the_agent_role_only_connect_usage_select_and_insert_now_and_on_future_objects()
    {
        var values = HelmValues.Load(HelmValues.CnpgCluster);
        var owner = values.Required("cluster.initdb.owner");
        var database = values.Required("cluster.initdb.database");
        var role = DatabaseSecrets.AgentRole;
        var statements = values.Strings("cluster.initdb.postInitApplicationSQL").Select(Normalize).ToList();

        var expected = new[]
        {
            $"CREATE ROLE {role} NOLOGIN", // before the operator's managed role exists; it then gets LOGIN and its password
            $"GRANT CONNECT ON DATABASE {database} TO {role}",
            $"GRANT USAGE ON SCHEMA public TO {role}",
            $"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {role}",
            $"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
            $"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT SELECT, INSERT ON TABLES TO {role}",
            $"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}",
        };
        Assert.Equal(expected, statements);

        // The chart writes each item unquoted into a YAML list: nothing that YAML would read otherwise.
        Assert.All(statements, sql => Assert.DoesNotMatch(@": |\s#|^[\[{&*!|>'""%@`]", sql));
    }

    [Fact]
    public void Cnpg_cluster_pins_an_exact_postgresql_image_of_the_declared_major()
    {
        var values = HelmValues.Load(HelmValues.CnpgCluster);
        var image = values.Required("cluster.imageName");
        var (repository, tag) = AgentOverlayTests.SplitImage(image);

        Assert.Equal("ghcr.io/cloudnative-pg/postgresql", repository);
        Assert.NotNull(tag);
        // major.minor and a flavour (e.g. 17.6-system-trixie): never the floating major-only tag "17".
        var match = Regex.Match(tag, @"^(\d+)\.(\d+)(-[a-z]+-[a-z]+)?$");
        Assert.True(match.Success, $"cluster.imageName tag '{tag}' is not an exact PostgreSQL version");
        Assert.Equal(values.Required("version.postgresql"), match.Groups[1].Value);
        Assert.Null(values.Scalar("cluster.imageCatalogRef.name")); // a catalog would take precedence over imageName

        // How to pin the digest is documented next to it.
        Assert.Matches(@"(?m)^\s*#.*imageName: ghcr\.io/cloudnative-pg/postgresql:[^@\s]+@sha256:", ReadText(HelmValues.CnpgCluster));
    }

    [Fact]
    public void Overlay_shows_how_to_pin_the_agent_image_by_digest()
    {
        var kustomization = ReadText("aspirate-output/overlay/kustomization.yaml");
        Assert.Matches(@"(?m)^\s*#\s*digest: sha256:[0-9a-f]{64}\s*$", kustomization);
    }

    [Fact]
    public void Bitnami_values_use_the_legacy_images_at_exact_tags_and_the_names_overlay_bitnami_reads()
    {
        var values = HelmValues.Load(HelmValues.Bitnami);
        Assert.Equal("true", values.Required("global.security.allowInsecureImages"));
        Assert.StartsWith("bitnamilegacy/", values.Required("image.repository"), StringComparison.Ordinal);
        Assert.StartsWith("bitnamilegacy/", values.Required("volumePermissions.image.repository"), StringComparison.Ordinal);
        Assert.StartsWith("bitnamilegacy/", values.Required("metrics.image.repository"), StringComparison.Ordinal);
        Assert.NotEqual("latest", values.Required("image.tag"));
        // Exact builds (version, Debian release, revision), and the digest pinning documented.
        Assert.Matches(@"^\d+\.\d+\.\d+-debian-\d+-r\d+$", values.Required("image.tag"));
        Assert.Matches(@"^\d+-debian-\d+-r\d+$", values.Required("volumePermissions.image.tag"));
        Assert.Matches(@"^\d+\.\d+\.\d+-debian-\d+-r\d+$", values.Required("metrics.image.tag"));
        Assert.Matches(@"(?m)^#\s*digest: sha256:", ReadText(HelmValues.Bitnami));
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

    private static string ReadText(string repositoryRelativePath) => File.ReadAllText(RepositoryRoot.Combine(repositoryRelativePath.Split('/')));

    private static string Normalize(string sql) => Regex.Replace(sql.Trim().TrimEnd(';'), @"\s+", " ");

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
