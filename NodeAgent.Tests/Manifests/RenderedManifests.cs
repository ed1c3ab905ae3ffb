using k8s;
using k8s.Models;

namespace NodeAgent.Tests.Manifests;

/// <summary>One rendered overlay: the text kustomize printed and every document loaded into the typed Kubernetes models.</summary>
public sealed class RenderedManifests
{
    public const string AgentName = "nodeagent";
    public const string MigrationJobName = "nodeagent-migrate";

    private static readonly Dictionary<string, Type> ExtraTypes = new()
    {
        [ServiceMonitor.TypeKey] = typeof(ServiceMonitor),
        [PodMonitor.TypeKey] = typeof(PodMonitor),
    };

    public RenderedManifests(string name, string text)
    {
        Name = name;
        Text = text;
        Documents = SplitDocuments(text);

        // Strict: an unknown or duplicated field (a typo in a patch) fails the load instead of being dropped silently.
        Objects = KubernetesYaml.LoadAllFromString(string.Join("\n---\n", Documents), ExtraTypes, strict: true)
            .Cast<IKubernetesObject<V1ObjectMeta>>()
            .ToList();
    }

    public string Name { get; }

    public string Text { get; }

    /// <summary>The non-empty YAML documents of the rendering.</summary>
    public IReadOnlyList<string> Documents { get; }

    public IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Objects { get; }

    public IEnumerable<T> All<T>() => Objects.OfType<T>();

    public T Single<T>(string name)
        where T : IKubernetesObject<V1ObjectMeta> =>
        Assert.Single(Objects.OfType<T>(), o => o.Metadata.Name == name);

    public V1DaemonSet Agent => Single<V1DaemonSet>(AgentName);

    public V1PodSpec AgentPod => Agent.Spec.Template.Spec;

    public V1Container AgentContainer => Assert.Single(AgentPod.Containers, c => c.Name == AgentName);

    public V1Service AgentService => Single<V1Service>(AgentName);

    /// <summary>The Job that applies the schema migrations with the owner's role (overlay/migrate-job.yaml).</summary>
    public V1Job MigrationJob => Single<V1Job>(MigrationJobName);

    public V1Container MigrationContainer => Assert.Single(MigrationJob.Spec.Template.Spec.Containers);

    /// <summary>
    /// The environment the agent's process sees, as the kubelet builds it: the ConfigMaps of envFrom in order, then
    /// env entries (which win). Values that come from elsewhere are resolved by <paramref name="resolve"/>.
    /// </summary>
    public IReadOnlyDictionary<string, string> AgentEnvironment(Func<V1EnvVarSource, string> resolve) =>
        ContainerEnvironment(AgentContainer, resolve);

    /// <summary>The environment of any rendered container, built as <see cref="AgentEnvironment"/> builds the agent's.</summary>
    public IReadOnlyDictionary<string, string> ContainerEnvironment(V1Container container, Func<V1EnvVarSource, string> resolve)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var source in container.EnvFrom ?? [])
        {
            Assert.Null(source.SecretRef); // credentials come as single secretKeyRef values, never a whole Secret
            var configMap = Single<V1ConfigMap>(Assert.IsType<V1ConfigMapEnvSource>(source.ConfigMapRef).Name);
            foreach (var (key, value) in configMap.Data ?? new Dictionary<string, string>())
            {
                environment[(source.Prefix ?? "") + key] = value;
            }
        }

        foreach (var variable in container.Env ?? [])
        {
            environment[variable.Name] = variable.ValueFrom is null ? variable.Value ?? "" : resolve(variable.ValueFrom);
        }

        return environment;
    }

    /// <summary>Literal environment values only (ConfigMap data and env values), keyed by variable name.</summary>
    public IReadOnlyDictionary<string, string> AgentLiteralEnvironment() =>
        AgentEnvironment(_ => "")
            .Where(kv => AgentContainer.Env?.FirstOrDefault(e => e.Name == kv.Key)?.ValueFrom is null)
            .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

    public V1EnvVar AgentEnv(string name) => Assert.Single(AgentContainer.Env ?? [], e => e.Name == name);

    /// <summary>Resolves a container port given by number or by name against the agent container's ports.</summary>
    public int AgentContainerPort(IntOrString port)
    {
        var value = port.Value;
        if (int.TryParse(value, out var number))
        {
            return number;
        }

        return Assert.Single(AgentContainer.Ports ?? [], p => p.Name == value).ContainerPort;
    }

    private static List<string> SplitDocuments(string text)
    {
        var documents = new List<string>();
        var current = new List<string>();
        foreach (var line in text.Replace("\r\n", "\n").Split('\n'))
        {
            if (line.TrimEnd() == "---" || line.StartsWith("--- ", StringComparison.Ordinal))
            {
                Flush();
                continue;
            }

            current.Add(line);
        }

        Flush();
        return documents;

        void Flush()
        {
            var document = string.Join("\n", current);
            current.Clear();
            var meaningful = document.Split('\n').Any(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith('#'));
            if (meaningful)
            {
                documents.Add(document);
            }
        }
    }
}

/// <summary>Label and annotation look-ups on the models' IDictionary maps (which may be null).</summary>
internal static class LabelMaps
{
    public static string? ValueOrNull(this IDictionary<string, string>? map, string key) =>
        map is not null && map.TryGetValue(key, out var value) ? value : null;
}
