using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using k8s.Models;
using NodeAgent.Tests.Manifests;
using YamlDotNet.RepresentationModel;

namespace NodeAgent.Tests.Dashboards;

/// <summary>
/// components/grafana-dashboards as an operator uses it (with the overlay and the ServiceMonitor whose relabeling the
/// panels group by), rendered by kubectl's kustomize; and the dashboards themselves, whatever JSON files the folder holds.
/// </summary>
public sealed partial class DashboardComponentTests
{
    private const string Namespace = "node-monitor";
    private const string SidecarLabel = "grafana_dashboard";
    private const string FolderAnnotation = "grafana_folder";

    private static readonly Lazy<RenderedManifests> Rendered = new(() => new RenderedManifests(
        "overlay + components/servicemonitor + components/grafana-dashboards",
        Kustomize.RenderComposition([ManifestsFixture.Overlay], [ManifestsFixture.ServiceMonitorComponent, DashboardFiles.ComponentDirectory])));

    public static TheoryData<string> Dashboards => [.. DashboardFiles.All().Select(Path.GetFileName).OfType<string>()];

    private static IReadOnlyList<V1ConfigMap> DashboardConfigMaps =>
        [.. Rendered.Value.All<V1ConfigMap>().Where(c => c.Metadata.Labels.ValueOrNull(SidecarLabel) is not null)];

    [Fact]
    public void The_folder_holds_the_agents_dashboard()
    {
        Assert.Contains("node-monitor-agents.json", DashboardFiles.All().Select(Path.GetFileName));
    }

    [Theory]
    [MemberData(nameof(Dashboards))]
    public void Every_dashboard_of_the_folder_is_provisioned_unchanged_as_a_ConfigMap_key(string fileName)
    {
        var holders = DashboardConfigMaps.Where(c => c.Data?.ContainsKey(fileName) == true).ToList();

        Assert.True(holders.Count == 1,
            $"{fileName} must be the key of exactly one dashboard ConfigMap (list it under configMapGenerator files in {DashboardFiles.ComponentDirectory}/kustomization.yaml); "
            + $"it is in {holders.Count}: {string.Join(", ", holders.Select(h => h.Metadata.Name))}");
        var holder = holders[0];
        Assert.Equal(File.ReadAllText(DashboardFiles.PathOf(fileName)), holder.Data[fileName]);
    }

    [Fact]
    public void Every_dashboard_ConfigMap_is_in_the_agents_namespace_labelled_for_the_sidecar_and_filed_in_a_folder()
    {
        Assert.NotEmpty(DashboardConfigMaps);
        Assert.All(DashboardConfigMaps, configMap =>
        {
            Assert.Equal(Namespace, configMap.Metadata.NamespaceProperty);
            Assert.Equal("1", configMap.Metadata.Labels.ValueOrNull(SidecarLabel));
            Assert.False(string.IsNullOrWhiteSpace(configMap.Metadata.Annotations.ValueOrNull(FolderAnnotation)));
            // Only dashboards: the sidecar writes every key of a labelled ConfigMap into Grafana's provisioning folder.
            Assert.All(configMap.Data?.Keys ?? [], key => Assert.EndsWith(".json", key, StringComparison.Ordinal));
            Assert.Null(configMap.BinaryData);
        });
    }

    [Fact]
    public void Every_dashboard_ConfigMap_holds_a_file_of_the_folder()
    {
        var files = DashboardFiles.All().Select(Path.GetFileName).ToHashSet(StringComparer.Ordinal);

        Assert.All(DashboardConfigMaps.SelectMany(c => c.Data?.Keys ?? []), key => Assert.Contains(key, files));
    }

    [Fact]
    public void The_dashboard_ConfigMaps_keep_their_generator_names_so_an_update_replaces_them()
    {
        var generated = GeneratorNames();

        Assert.NotEmpty(generated);
        Assert.Equal(generated.Order(StringComparer.Ordinal), DashboardConfigMaps.Select(c => c.Metadata.Name).Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Dashboards))]
    public void Every_dashboard_is_a_Grafana_dashboard_with_a_uid_no_other_dashboard_has(string fileName)
    {
        var dashboard = ParseStrictly(fileName);
        var uid = (string?)dashboard["uid"];

        Assert.False(string.IsNullOrWhiteSpace(uid), $"{fileName} has no uid");
        Assert.True(uid.Length <= 40 && UidCharacters().IsMatch(uid), $"{fileName}: uid '{uid}' is not one Grafana accepts (at most 40 of a-z A-Z 0-9 - _)");
        Assert.False(string.IsNullOrWhiteSpace((string?)dashboard["title"]), $"{fileName} has no title");
        Assert.NotEmpty(DashboardFiles.Panels(dashboard));
        var sharing = DashboardFiles.All().Where(p => Path.GetFileName(p) != fileName && (string?)DashboardFiles.Load(p)["uid"] == uid).Select(Path.GetFileName);
        Assert.True(!sharing.Any(), $"{fileName} has the uid '{uid}' of {string.Join(", ", sharing)}: Grafana would keep only one of them");
    }

    [Theory]
    [MemberData(nameof(Dashboards))]
    public void Every_query_of_every_dashboard_takes_its_datasource_from_a_datasource_variable(string fileName)
    {
        var dashboard = ParseStrictly(fileName);
        var datasourceVariables = DashboardFiles.Variables(dashboard)
            .Where(v => (string?)v["type"] == "datasource")
            .Select(v => (string)v["name"]!)
            .ToHashSet(StringComparer.Ordinal);
        Assert.NotEmpty(datasourceVariables);

        var problems = new List<string>();
        foreach (var panel in DashboardFiles.Panels(dashboard))
        {
            var title = (string?)panel["title"] ?? "(untitled)";
            foreach (var (target, index) in DashboardFiles.Targets(panel).Select((t, i) => (t, i)))
            {
                // A target without a datasource of its own uses its panel's.
                var reference = target["datasource"] ?? panel["datasource"];
                if (!ReferencesVariable(reference, datasourceVariables))
                {
                    problems.Add($"\"{title}\" target {(string?)target["refId"] ?? index.ToString(System.Globalization.CultureInfo.InvariantCulture)}: {reference?.ToJsonString() ?? "no datasource"}");
                }
            }

            if (panel["datasource"] is { } own && DashboardFiles.Targets(panel).Any() && !ReferencesVariable(own, datasourceVariables))
            {
                problems.Add($"\"{title}\": {own.ToJsonString()}");
            }
        }

        foreach (var variable in DashboardFiles.Variables(dashboard).Where(v => (string?)v["type"] == "query"))
        {
            if (!ReferencesVariable(variable["datasource"], datasourceVariables))
            {
                problems.Add($"variable {(string?)variable["name"]}: {variable["datasource"]?.ToJsonString() ?? "no datasource"}");
            }
        }

        Assert.True(problems.Count == 0,
            $"{fileName}: queries must use one of the datasource variables ({string.Join(", ", datasourceVariables)}), not a fixed datasource:\n{string.Join('\n', problems)}");
    }

    private static bool ReferencesVariable(JsonNode? datasource, HashSet<string> variables)
    {
        var uid = datasource switch
        {
            JsonObject o => (string?)o["uid"],
            JsonValue v when v.TryGetValue<string>(out var text) => text,
            _ => null,
        };
        var match = uid is null ? null : VariableReference().Match(uid);
        return match is { Success: true } && variables.Contains(match.Groups["name"].Value);
    }

    private static JsonObject ParseStrictly(string fileName)
    {
        var text = File.ReadAllText(DashboardFiles.PathOf(fileName));
        try
        {
            // Strict JSON, as Grafana reads it (no comments, no trailing commas), and no key given twice, of which one
            // would silently win.
            return JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false })!.AsObject();
        }
        catch (JsonException e)
        {
            Assert.Fail($"{fileName} is not valid JSON: {e.Message}");
            throw;
        }
    }

    /// <summary>The names of the component's configMapGenerator entries.</summary>
    private static List<string> GeneratorNames()
    {
        var yaml = new YamlStream();
        using (var reader = new StreamReader(Path.Combine(DashboardFiles.Directory, "kustomization.yaml")))
        {
            yaml.Load(reader);
        }

        var root = (YamlMappingNode)yaml.Documents[0].RootNode;
        var generators = (YamlSequenceNode)root.Children[new YamlScalarNode("configMapGenerator")];
        return [.. generators.Children.Cast<YamlMappingNode>().Select(g => ((YamlScalarNode)g.Children[new YamlScalarNode("name")]).Value!)];
    }

    [GeneratedRegex(@"^[A-Za-z0-9_-]+$")]
    private static partial Regex UidCharacters();

    [GeneratedRegex(@"^\$(?:\{(?<name>[A-Za-z0-9_]+)\}|(?<name>[A-Za-z0-9_]+))$")]
    private static partial Regex VariableReference();
}
