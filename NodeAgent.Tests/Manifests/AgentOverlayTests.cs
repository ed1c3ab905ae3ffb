using System.Text.RegularExpressions;
using k8s.Models;

namespace NodeAgent.Tests.Manifests;

/// <summary>
/// What every rendering an operator can apply must give: the agent as a DaemonSet on every node, reading the host
/// directory read-only, credentials only from a Secret, endpoints on the port the agent listens on, a tight pod.
/// </summary>
[Collection(ManifestsCollection.Name)]
public sealed partial class AgentOverlayTests(ManifestsFixture fixture)
{
    public const string Namespace = "node-monitor";
    public const string HostDirectory = "/mnt/harman";

    /// <summary>The agent's own default HTTP port, used when neither ASPNETCORE_URLS nor urls is set.</summary>
    public const int AgentDefaultPort = 9090;

    /// <summary>HostOptions.ShutdownTimeout of the agent: the kubelet must wait longer before it kills the process.</summary>
    public const int HostShutdownTimeoutSeconds = 30;

    public static TheoryData<string> Renderings =>
        [nameof(ManifestsFixture.Cnpg), nameof(ManifestsFixture.Bitnami), nameof(ManifestsFixture.WithServiceMonitor), nameof(ManifestsFixture.NonRoot),
         nameof(ManifestsFixture.WithPodMonitor), nameof(ManifestsFixture.NoProcesses)];

    /// <summary>Whether the rendered agent records process activity (Agent:Processes:Enabled is not false).</summary>
    public static bool RecordsProcesses(RenderedManifests rendered) =>
        !string.Equals(rendered.AgentLiteralEnvironment().GetValueOrDefault("Agent__Processes__Enabled"), "false", StringComparison.OrdinalIgnoreCase);

    public const string PriorityClassName = "node-monitor-agent";
    public const string ServiceAccountName = "nodeagent";

    private static readonly string[] StandardLabels =
    [
        "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
        "app.kubernetes.io/part-of", "app.kubernetes.io/version", "app.kubernetes.io/managed-by",
    ];

    [Theory]
    [MemberData(nameof(Renderings))]
    public void Renders_and_every_document_loads_strictly(string rendering)
    {
        var rendered = fixture.Get(rendering);
        Assert.NotEmpty(rendered.Documents);
        Assert.Equal(rendered.Documents.Count, rendered.Objects.Count);
        Assert.All(rendered.Objects, o => Assert.False(string.IsNullOrEmpty(o.Metadata?.Name), $"{o.Kind} without a name"));
    }

    [Theory]
    [MemberData(nameof(Renderings))]
    public void Agent_is_a_DaemonSet_with_rolling_updates_and_no_replicas(string rendering)
    {
        var rendered = fixture.Get(rendering);
        Assert.Empty(rendered.All<V1Deployment>());
        Assert.Empty(rendered.All<V1StatefulSet>());
        Assert.Empty(rendered.All<V1ReplicaSet>());
        Assert.Empty(rendered.All<V1Pod>());

        var agent = rendered.Agent;
        Assert.Equal("DaemonSet", agent.Kind);
        Assert.Equal("apps/v1", agent.ApiVersion);
        var document = Assert.Single(rendered.Documents, d => d.Contains("kind: DaemonSet", StringComparison.Ordinal));
        Assert.DoesNotMatch(@"(?m)^\s+replicas:", document);
        Assert.DoesNotMatch(@"(?m)^  strategy:", document);

        Assert.Equal("RollingUpdate", agent.Spec.UpdateStrategy?.Type);
        Assert.Equal("1", agent.Spec.UpdateStrategy?.RollingUpdate?.MaxUnavailable?.Value);
        Assert.InRange(agent.Spec.MinReadySeconds ?? 0, 0, 30);

        // The selector is what Aspirate generated (immutable on upgrades) and must select the pod template.
        Assert.NotEmpty(agent.Spec.Selector.MatchLabels);
        Assert.All(agent.Spec.Selector.MatchLabels, kv => Assert.Equal(kv.Value, agent.Spec.Template.Metadata.Labels[kv.Key]));
    }

    [Theory]
    [MemberData(nameof(Renderings))]
    public void No_PostgreSQL_is_deployed_by_the_overlay(string rendering)
    {
        var rendered = fixture.Get(rendering);
        Assert.DoesNotContain(rendered.Objects, o => o.Metadata.Name.Contains("postgres", StringComparison.OrdinalIgnoreCase));
        var containers = rendered.All<V1DaemonSet>()
            .SelectMany(d => d.Spec.Template.Spec.Containers.Concat(d.Spec.Template.Spec.InitContainers ?? []));
        Assert.DoesNotContain(containers, c => c.Image.Contains("postgres", StringComparison.OrdinalIgnoreCase));
        Assert.Empty(rendered.All<V1PersistentVolumeClaim>());
    }

    [Theory]
    [MemberData(nameof(Renderings))]
    public void Runs_on_every_linux_node_whatever_NoSchedule_taint_it_carries(string rendering)
    {
        var pod = fixture.Get(rendering).AgentPod;
        var tolerations = pod.Tolerations ?? [];

        // One key-less toleration for every NoSchedule taint (control plane included) ...
        Assert.Contains(tolerations, t => t.Key is null && t.OperatorProperty == "Exists" && t.Effect == "NoSchedule" && t.Value is null);
        // ... instead of the obsolete per-key ones.
        Assert.DoesNotContain(tolerations, t => t.Key is "node-role.kubernetes.io/control-plane" or "node-role.kubernetes.io/master");
        // NoExecute is not tolerated wholesale (a NoExecute taint empties a node on purpose; see the patch's comment),
        // and nothing tolerates every effect at once.
        Assert.DoesNotContain(tolerations, t => t.Key is null && t.OperatorProperty == "Exists" && t.Effect is null or "" or "NoExecute");

        // Linux nodes only (the image is linux/amd64, linux/arm64), and nothing else narrows the set of nodes.
        Assert.Equal(new Dictionary<string, string> { ["kubernetes.io/os"] = "linux" }, pod.NodeSelector);
        Assert.Null(pod.Affinity?.NodeAffinity);
    }

    [Theory]
    [MemberData(nameof(Renderings))]
    public void Agent_outranks_ordinary_workloads_and_lets_the_autoscaler_drain_its_node(string rendering)
    {
        var rendered = fixture.Get(rendering);
        Assert.Equal(PriorityClassName, rendered.AgentPod.PriorityClassName);
        Assert.Null(rendered.AgentPod.Priority); // set by admission from the class, never by hand

        var priorityClass = rendered.Single<V1PriorityClass>(PriorityClassName);
        Assert.Null(priorityClass.Metadata.NamespaceProperty); // cluster-scoped
        Assert.InRange(priorityClass.Value ?? 0, 1, 1_000_000_000); // above the default 0, within the range of user classes
        Assert.NotEqual(true, priorityClass.GlobalDefault);
        Assert.False(string.IsNullOrWhiteSpace(priorityClass.Description));

        var annotations = rendered.Agent.Spec.Template.Metadata.Annotations ?? new Dictionary<string, string>();
        Assert.Equal("true", annotations.ValueOrNull("cluster-autoscaler.kubernetes.io/safe-to-evict"));
    }

    [Theory]
    [MemberData(nameof(Renderings))]
    public void Agent_runs_as_its_own_service_account_without_a_token_or_permissions(string rendering)
    {
        var rendered = fixture.Get(rendering);
        Assert.Equal(ServiceAccountName, rendered.AgentPod.ServiceAccountName);
        Assert.Equal(ServiceAccountName, rendered.MigrationJob.Spec.Template.Spec.ServiceAccountName);

        var account = rendered.Single<V1ServiceAccount>(ServiceAccountName);
        Assert.False(account.AutomountServiceAccountToken ?? true, "the ServiceAccount must say automountServiceAccountToken: false");
        Assert.Empty(rendered.All<V1RoleBinding>());
        Assert.Empty(rendered.All<V1ClusterRoleBinding>());
    }

    [Theory]
    [MemberData(nameof(Renderings))]
    public void Host_directory_is_mounted_read_only_where_the_agent_scans(string rendering)
    {
        var rendered = fixture.Get(rendering);
        var volume = Assert.Single(rendered.AgentPod.Volumes, v => v.HostPath is not null);
        Assert.Equal(HostDirectory, volume.HostPath.Path);
        Assert.Equal("Directory", volume.HostPath.Type);

        var mount = Assert.Single(rendered.AgentContainer.VolumeMounts, m => m.Name == volume.Name);
        Assert.True(mount.ReadOnlyProperty, "the host directory must be mounted readOnly");
        // Submounts below the host directory read-only too (Kubernetes 1.33+; the patch's comment has the fallback).
        Assert.Equal("Enabled", mount.RecursiveReadOnly);
        Assert.True(mount.MountPropagation is null or "None", "recursiveReadOnly requires mountPropagation None");
        Assert.Null(mount.SubPath);

        // Agent:MountPath as the agent will read it (rendered env, or the agent's default when absent).
        var mountPath = rendered.AgentLiteralEnvironment().GetValueOrDefault("Agent__MountPath") ?? "/mnt/node-data";
        Assert.Equal(mountPath.TrimEnd('/'), mount.MountPath.TrimEnd('/'));

        // Nothing else of the host is visible but, for process activity, its network and PIDs (the kernel's
        // process events reach only the host's network namespace), with cluster DNS kept.
        Assert.Equal(RecordsProcesses(rendered), rendered.AgentPod.HostNetwork == true);
        Assert.Equal(rendered.AgentPod.HostNetwork == true ? "ClusterFirstWithHostNet" : "ClusterFirst", rendered.AgentPod.DnsPolicy ?? "ClusterFirst");
        Assert.Equal(RecordsProcesses(rendered), rendered.AgentPod.HostPID == true);
        Assert.NotEqual(true, rendered.AgentPod.HostIPC);
    }

    [Theory]
    [MemberData(nameof(Renderings))]
    public void Node_name_comes_from_the_downward_api(string rendering)
    {
        var nodeName = fixture.Get(rendering).AgentEnv("Agent__NodeName");
        Assert.Null(nodeName.Value);
        Assert.Equal("spec.nodeName", nodeName.ValueFrom?.FieldRef?.FieldPath);
    }

    [Theory]
    [MemberData(nameof(Renderings))]
    public void Password_comes_only_from_a_secret_key_reference(string rendering)
    {
        var rendered = fixture.Get(rendering);
        var password = rendered.AgentEnv("PGPASSWORD");
        Assert.Null(password.Value);
        Assert.False(string.IsNullOrEmpty(password.ValueFrom?.SecretKeyRef?.Name));
        Assert.False(string.IsNullOrEmpty(password.ValueFrom?.SecretKeyRef?.Key));
        Assert.NotEqual(true, password.ValueFrom?.SecretKeyRef?.Optional);

        // No connection string at all: the agent would prefer it over the PG* variables.
        Assert.DoesNotContain("ConnectionStrings__", rendered.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("MONITORDB_", rendered.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(rendered.AgentContainer.EnvFrom ?? [], e => e.SecretRef is not null);
    }

    [Theory]
    [MemberData(nameof(Renderings))]
    public void No_secret_material_in_clear(string rendering)
    {
        var rendered = fixture.Get(rendering);
        Assert.Empty(rendered.All<V1Secret>());

        var literals = rendered.All<V1ConfigMap>()
            .SelectMany(cm => (cm.Data ?? new Dictionary<string, string>()).Select(kv => ($"ConfigMap {cm.Metadata.Name} {kv.Key}", kv.Key, kv.Value)))
            .Concat(rendered.All<V1DaemonSet>().Select(d => d.Spec.Template.Spec)
                .Concat(rendered.All<V1Job>().Select(j => j.Spec.Template.Spec))
                .SelectMany(p => p.Containers)
                .SelectMany(c => (c.Env ?? []).Where(e => e.ValueFrom is null).Select(e => ($"env {c.Name} {e.Name}", e.Name, e.Value ?? ""))))
            .ToList();

        Assert.NotEmpty(literals);
        Assert.All(literals, literal =>
        {
            var (where, key, value) = literal;
            Assert.False(SecretName().IsMatch(key) && value.Length > 0, $"{where} is a secret given as a literal");
            Assert.False(SecretInValue().IsMatch(value), $"{where} holds a credential: {Redact(value)}");
        });
    }

    [Theory]
    [MemberData(nameof(Renderings))]
    public void Probes_and_service_use_the_port_the_agent_listens_on(string rendering)
    {
        var rendered = fixture.Get(rendering);
        var port = ListeningPort(rendered.AgentLiteralEnvironment());

        var container = rendered.AgentContainer;
        var metrics = Assert.Single(container.Ports, p => p.Name == "metrics");
        Assert.Equal(port, metrics.ContainerPort);
        Assert.True(metrics.Protocol is null or "TCP");

        var liveness = container.LivenessProbe?.HttpGet;
        var readiness = container.ReadinessProbe?.HttpGet;
        Assert.NotNull(liveness);
        Assert.NotNull(readiness);
        Assert.Equal("/alive", liveness.Path);
        Assert.Equal("/health", readiness.Path);
        Assert.Equal(port, rendered.AgentContainerPort(liveness.Port));
        Assert.Equal(port, rendered.AgentContainerPort(readiness.Port));
        Assert.True(liveness.Scheme is null or "HTTP");
        Assert.True(readiness.Scheme is null or "HTTP");
        if (container.StartupProbe?.HttpGet is { } startup)
        {
            Assert.Equal(port, rendered.AgentContainerPort(startup.Port));
        }

        var service = rendered.AgentService;
        Assert.Equal("ClusterIP", service.Spec.Type ?? "ClusterIP");
        var servicePort = Assert.Single(service.Spec.Ports);
        Assert.Equal("metrics", servicePort.Name);
        Assert.Equal(port, rendered.AgentContainerPort(servicePort.TargetPort ?? servicePort.Port.ToString()));
        Assert.NotEmpty(service.Spec.Selector);
        Assert.All(service.Spec.Selector, kv => Assert.Equal(kv.Value, rendered.Agent.Spec.Template.Metadata.Labels[kv.Key]));
    }

    [Theory]
    [MemberData(nameof(Renderings))]
    public void Pod_is_locked_down(string rendering)
    {
        var rendered = fixture.Get(rendering);
        var pod = rendered.AgentPod;
        var container = rendered.AgentContainer;
        var security = container.SecurityContext;
        Assert.NotNull(security);

        Assert.False(pod.AutomountServiceAccountToken ?? true, "automountServiceAccountToken must be false");
        Assert.True(security.ReadOnlyRootFilesystem);
        Assert.False(security.AllowPrivilegeEscalation ?? true, "allowPrivilegeEscalation must be false");
        Assert.NotEqual(true, security.Privileged);
        Assert.Equal(new[] { "ALL" }, security.Capabilities?.Drop ?? []);
        Assert.Equal("RuntimeDefault", security.SeccompProfile?.Type ?? pod.SecurityContext?.SeccompProfile?.Type);

        // The user: UID 0 only with every capability but CAP_DAC_READ_SEARCH dropped; otherwise non-root with none.
        var runAsUser = security.RunAsUser ?? pod.SecurityContext?.RunAsUser;
        var runAsNonRoot = security.RunAsNonRoot ?? pod.SecurityContext?.RunAsNonRoot;
        var added = security.Capabilities?.Add ?? [];
        Assert.NotNull(runAsUser);
        if (runAsUser == 0)
        {
            Assert.NotEqual(true, runAsNonRoot);
            // Process activity adds exactly what it needs: the connector (NET_ADMIN) and other users' /proc links (SYS_PTRACE).
            Assert.Equal(RecordsProcesses(rendered) ? ["DAC_READ_SEARCH", "NET_ADMIN", "SYS_PTRACE"] : new[] { "DAC_READ_SEARCH" }, added);
        }
        else
        {
            Assert.True(runAsNonRoot, "a non-root agent must say runAsNonRoot: true");
            Assert.Empty(added);
        }

        // A writable /tmp (the root filesystem is read-only), limited in size.
        var tmp = Assert.Single(container.VolumeMounts, m => m.MountPath == "/tmp");
        Assert.NotEqual(true, tmp.ReadOnlyProperty);
        var tmpVolume = Assert.Single(pod.Volumes, v => v.Name == tmp.Name);
        Assert.NotNull(tmpVolume.EmptyDir);
        Assert.NotNull(tmpVolume.EmptyDir.SizeLimit);

        Assert.True(pod.TerminationGracePeriodSeconds > HostShutdownTimeoutSeconds,
            $"terminationGracePeriodSeconds {pod.TerminationGracePeriodSeconds} must exceed the host's {HostShutdownTimeoutSeconds} s shutdown timeout");
    }

    [Theory]
    [MemberData(nameof(Renderings))]
    public void Resources_are_requested_and_memory_is_limited(string rendering)
    {
        var resources = fixture.Get(rendering).AgentContainer.Resources;
        Assert.NotNull(resources);
        var cpuRequest = resources.Requests["cpu"].ToDecimal();
        var memoryRequest = resources.Requests["memory"].ToDecimal();
        var memoryLimit = resources.Limits["memory"].ToDecimal();
        Assert.InRange(cpuRequest, 0.01m, 1m);
        Assert.InRange(memoryRequest, 32m * 1024 * 1024, 1024m * 1024 * 1024);
        Assert.True(memoryLimit >= memoryRequest, "memory limit below the request");
        Assert.InRange(memoryLimit, 64m * 1024 * 1024, 2048m * 1024 * 1024);

        // bench/memory.sh at the default bounds (1,000,000 entries, first start of file changes, 2 s scans, 30 s
        // outage): the peak with no heap limit, and the peak under the GC heap limit .NET derives from this memory limit
        // (75 %), run with that limit (HEAP_LIMIT) and finishing with no out-of-memory. Both must fit below the limit
        // with room to spare; no monitor should ask for more than 256Mi on every node.
        const decimal MiB = 1024m * 1024;
        const decimal MeasuredWorstCase = MeasuredWorstCaseMiB * MiB;
        const decimal MeasuredUnderHeapLimit = MeasuredUnderHeapLimitMiB * MiB;
        Assert.True(memoryLimit <= 256 * MiB, $"memory limit {memoryLimit / MiB} MiB: an agent on every node asks for at most 256Mi");
        Assert.True(memoryLimit >= MeasuredWorstCase * 1.15m, $"memory limit {memoryLimit / MiB} MiB leaves too little over the measured worst case of {MeasuredWorstCaseMiB} MiB");
        Assert.Equal(MeasuredHeapLimitMiB * MiB, memoryLimit * 0.75m);
        Assert.True(memoryLimit >= MeasuredUnderHeapLimit * 1.25m, $"under its derived heap limit the agent peaked at {MeasuredUnderHeapLimitMiB} MiB, too close to the {memoryLimit / MiB} MiB limit");
    }

    /// <summary>bench/memory.sh 1000000 (NativeAOT): peak RSS with no heap limit (the highest of three runs: 147, 143, 144; 145, 144, 146 with the state's hashes in memory).</summary>
    private const decimal MeasuredWorstCaseMiB = 147;

    /// <summary>The GC heap limit that run used (HEAP_LIMIT), and the peak RSS under it.</summary>
    private const decimal MeasuredHeapLimitMiB = 192;

    private const decimal MeasuredUnderHeapLimitMiB = 142;

    [Theory]
    [MemberData(nameof(Renderings))]
    public void Everything_is_in_one_namespace_with_standard_labels(string rendering)
    {
        var rendered = fixture.Get(rendering);
        rendered.Single<V1Namespace>(Namespace);

        foreach (var o in rendered.Objects.Where(o => o is not V1Namespace))
        {
            // The one cluster-scoped object, the PriorityClass, has no namespace.
            Assert.Equal(o is V1PriorityClass ? null : Namespace, o.Metadata.NamespaceProperty);

            // The version label belongs to what runs the image (checked against the tag in Image_is_pinned).
            foreach (var label in StandardLabels.Where(l => o is not (ServiceMonitor or PodMonitor) || l != "app.kubernetes.io/version"))
            {
                Assert.True(o.Metadata.Labels?.ContainsKey(label) == true, $"{o.Kind} {o.Metadata.Name} lacks {label}");
            }

            Assert.Equal("nodeagent", o.Metadata.Labels!["app.kubernetes.io/name"]);
        }

        var templateLabels = rendered.Agent.Spec.Template.Metadata.Labels;
        Assert.All(StandardLabels, label => Assert.True(templateLabels.ContainsKey(label), $"pod template lacks {label}"));
    }

    [Theory]
    [MemberData(nameof(Renderings))]
    public void Image_is_pinned(string rendering)
    {
        var rendered = fixture.Get(rendering);
        var image = rendered.AgentContainer.Image;
        var (repository, tag) = SplitImage(image);
        Assert.False(string.IsNullOrEmpty(tag), $"image {image} has no tag");
        Assert.NotEqual("latest", tag);
        Assert.Equal(rendered.Agent.Metadata.Labels["app.kubernetes.io/version"], tag);
        Assert.Equal(rendered.Agent.Spec.Template.Metadata.Labels["app.kubernetes.io/version"], tag);
        Assert.Contains('/', repository);
        Assert.Equal("IfNotPresent", rendered.AgentContainer.ImagePullPolicy);
    }

    /// <summary>
    /// The port Kestrel binds from the rendered environment: ASPNETCORE_URLS (or urls) wins over the HTTP_PORTS
    /// variables, and with none of them the agent uses its default, 9090.
    /// </summary>
    public static int ListeningPort(IReadOnlyDictionary<string, string> environment)
    {
        var urls = environment.GetValueOrDefault("ASPNETCORE_URLS") ?? environment.GetValueOrDefault("urls") ?? environment.GetValueOrDefault("URLS");
        if (!string.IsNullOrWhiteSpace(urls))
        {
            var ports = urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(u => new Uri(u.Replace("://+", "://localhost", StringComparison.Ordinal).Replace("://*", "://localhost", StringComparison.Ordinal)).Port)
                .Distinct()
                .ToList();
            return Assert.Single(ports);
        }

        foreach (var key in new[] { "ASPNETCORE_HTTP_PORTS", "HTTP_PORTS", "DOTNET_HTTP_PORTS" })
        {
            if (environment.GetValueOrDefault(key) is { Length: > 0 } httpPorts)
            {
                return int.Parse(Assert.Single(httpPorts.Split(';', StringSplitOptions.RemoveEmptyEntries)), System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return AgentDefaultPort;
    }

    public static (string Repository, string? Tag) SplitImage(string image)
    {
        var withoutDigest = image.Split('@')[0];
        var lastSlash = withoutDigest.LastIndexOf('/');
        var colon = withoutDigest.LastIndexOf(':');
        return colon > lastSlash ? (withoutDigest[..colon], withoutDigest[(colon + 1)..]) : (withoutDigest, null);
    }

    private static string Redact(string value) => value.Length <= 12 ? "***" : value[..12] + "***";

    [GeneratedRegex(@"(PASSWORD|PASSWD|SECRET|TOKEN|CONNECTIONSTRING|APIKEY|API_KEY)", RegexOptions.IgnoreCase)]
    private static partial Regex SecretName();

    [GeneratedRegex(@"(password|pwd)\s*=|://[^/\s:@]+:[^@\s/]+@|\{[a-z0-9-]+\.value\}", RegexOptions.IgnoreCase)]
    private static partial Regex SecretInValue();
}
