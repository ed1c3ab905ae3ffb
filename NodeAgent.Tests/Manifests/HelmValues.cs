using YamlDotNet.RepresentationModel;

namespace NodeAgent.Tests.Manifests;

/// <summary>A committed Helm values file, read as plain YAML (the charts themselves cannot be rendered offline).</summary>
public sealed class HelmValues
{
    public const string CnpgOperator = "aspirate-output/helm/cnpg-operator-values.yaml";
    public const string CnpgCluster = "aspirate-output/helm/cnpg-cluster-values.yaml";
    public const string Bitnami = "aspirate-output/helm/bitnami-values.yaml";

    private readonly YamlMappingNode _root;

    private HelmValues(string path, YamlMappingNode root)
    {
        Path = path;
        _root = root;
    }

    public string Path { get; }

    public static HelmValues Load(string repositoryRelativePath)
    {
        var full = RepositoryRoot.Combine(repositoryRelativePath.Split('/'));
        var stream = new YamlStream();
        using (var reader = new StreamReader(full))
        {
            stream.Load(reader); // throws on invalid YAML, including duplicate keys
        }

        var document = Assert.Single(stream.Documents);
        return new HelmValues(repositoryRelativePath, Assert.IsType<YamlMappingNode>(document.RootNode));
    }

    /// <summary>The scalar at a dotted path such as "cluster.initdb.database", or null when absent.</summary>
    public string? Scalar(string dottedPath) => Node(_root, dottedPath) is YamlScalarNode scalar ? scalar.Value : null;

    /// <summary>The scalars of the sequence at a dotted path (empty when absent).</summary>
    public IReadOnlyList<string> Strings(string dottedPath) =>
        Node(_root, dottedPath) is YamlSequenceNode sequence
            ? sequence.Children.Select(c => Assert.IsType<YamlScalarNode>(c).Value ?? "").ToList()
            : [];

    /// <summary>The mapping items of the sequence at a dotted path, each read like the root (empty when absent).</summary>
    public IReadOnlyList<HelmValues> Items(string dottedPath) =>
        Node(_root, dottedPath) is YamlSequenceNode sequence
            ? sequence.Children.Select((c, i) => new HelmValues($"{Path}: {dottedPath}[{i}]", Assert.IsType<YamlMappingNode>(c))).ToList()
            : [];

    private static YamlNode? Node(YamlNode root, string dottedPath)
    {
        var node = root;
        foreach (var key in dottedPath.Split('.'))
        {
            if (node is not YamlMappingNode mapping || !mapping.Children.TryGetValue(new YamlScalarNode(key), out var child))
            {
                return null;
            }

            node = child;
        }

        return node;
    }

    public string Required(string dottedPath)
    {
        var value = Scalar(dottedPath);
        Assert.False(string.IsNullOrWhiteSpace(value), $"{Path}: {dottedPath} must be set");
        return value!;
    }

    /// <summary>Every scalar with its dotted path, for scans such as "no password committed".</summary>
    public IEnumerable<(string Path, string Value)> Scalars() => Walk(_root, "");

    private static IEnumerable<(string, string)> Walk(YamlNode node, string prefix)
    {
        switch (node)
        {
            case YamlMappingNode mapping:
                foreach (var (key, value) in mapping.Children)
                {
                    var keyText = ((YamlScalarNode)key).Value ?? "";
                    foreach (var item in Walk(value, prefix.Length == 0 ? keyText : $"{prefix}.{keyText}"))
                    {
                        yield return item;
                    }
                }

                break;
            case YamlSequenceNode sequence:
                var index = 0;
                foreach (var child in sequence.Children)
                {
                    foreach (var item in Walk(child, $"{prefix}[{index++}]"))
                    {
                        yield return item;
                    }
                }

                break;
            case YamlScalarNode scalar:
                yield return (prefix, scalar.Value ?? "");
                break;
        }
    }
}

/// <summary>
/// What the PostgreSQL installs put in their Secrets, derived from the committed values, so that the manifest tests can
/// stand in for the Secret the cluster will have.
/// </summary>
public static class DatabaseSecrets
{
    /// <summary>The keys CloudNativePG writes into the `&lt;cluster&gt;-app` Secret (pkg/specs/secrets.go, CreateSecret).</summary>
    public static readonly IReadOnlySet<string> CnpgAppSecretKeys = new HashSet<string>(StringComparer.Ordinal)
    {
        "username", "user", "password", "dbname", "host", "port", "pgpass", "uri", "jdbc-uri", "fqdn-uri", "fqdn-jdbc-uri",
    };

    public const string PlaceholderPassword = "placeholder-not-a-real-password";

    public static string CnpgClusterName(HelmValues values) => values.Required("fullnameOverride");

    public static string CnpgAppSecretName(HelmValues values) => CnpgClusterName(values) + "-app";

    /// <summary>The Secret CloudNativePG creates with the cluster's own CA (keys ca.crt, ca.key).</summary>
    public static string CnpgCaSecretName(HelmValues values) => CnpgClusterName(values) + "-ca";

    public const string AgentRole = "nodeagent";

    /// <summary>The managed role the agent logs in as (cluster.roles), not the owner.</summary>
    public static HelmValues CnpgAgentRole(HelmValues values) =>
        Assert.Single(values.Items("cluster.roles"), r => r.Scalar("name") == AgentRole);

    /// <summary>The basic-auth Secret the operator reads the agent role's password from (created by the operator's user).</summary>
    public static string CnpgAgentSecretName(HelmValues values) => CnpgAgentRole(values).Required("passwordSecret.name");

    /// <summary>The data of that basic-auth Secret, as the README has it created.</summary>
    public static IReadOnlyDictionary<string, string> CnpgAgentSecret(HelmValues values) => new Dictionary<string, string>
    {
        ["username"] = CnpgAgentRole(values).Required("name"),
        ["password"] = PlaceholderPassword,
    };

    /// <summary>
    /// The DNS names of the server certificate CloudNativePG issues for the cluster (GetClusterAltDNSNames: the rw, r and ro
    /// Services, short, with the namespace, with .svc and with the cluster domain).
    /// </summary>
    public static IReadOnlySet<string> CnpgServerCertificateNames(HelmValues values, string ns, string clusterDomain = "cluster.local") =>
        new[] { "-rw", "-r", "-ro" }
            .Select(suffix => CnpgClusterName(values) + suffix)
            .SelectMany(service => new[] { service, $"{service}.{ns}", $"{service}.{ns}.svc", $"{service}.{ns}.svc.{clusterDomain}" })
            .ToHashSet(StringComparer.Ordinal);

    /// <summary>The data of the `-app` Secret the operator will create for the committed cluster values.</summary>
    public static IReadOnlyDictionary<string, string> CnpgAppSecret(HelmValues values)
    {
        var database = values.Required("cluster.initdb.database");
        var owner = values.Scalar("cluster.initdb.owner") is { Length: > 0 } o ? o : database;
        var host = CnpgClusterName(values) + "-rw";
        return new Dictionary<string, string>
        {
            ["username"] = owner,
            ["user"] = owner,
            ["password"] = PlaceholderPassword,
            ["dbname"] = database,
            ["host"] = host,
            ["port"] = "5432",
            ["pgpass"] = $"{host}:5432:{database}:{owner}:{PlaceholderPassword}\n",
            ["uri"] = $"postgresql://{owner}:{PlaceholderPassword}@{host}.node-monitor:5432/{database}",
            ["jdbc-uri"] = $"jdbc:postgresql://{host}.node-monitor:5432/{database}?password={PlaceholderPassword}&user={owner}",
            ["fqdn-uri"] = $"postgresql://{owner}:{PlaceholderPassword}@{host}.node-monitor.svc.cluster.local:5432/{database}",
            ["fqdn-jdbc-uri"] = $"jdbc:postgresql://{host}.node-monitor.svc.cluster.local:5432/{database}?password={PlaceholderPassword}&user={owner}",
        };
    }

    /// <summary>The Bitnami chart's Secret: named after the release's full name, passwords only.</summary>
    public static string BitnamiSecretName(HelmValues values) => values.Required("fullnameOverride");

    public static IReadOnlyDictionary<string, string> BitnamiSecret(HelmValues values) => new Dictionary<string, string>
    {
        [values.Required("auth.secretKeys.userPasswordKey")] = PlaceholderPassword,
        [values.Required("auth.secretKeys.adminPasswordKey")] = PlaceholderPassword + "-admin",
    };
}
