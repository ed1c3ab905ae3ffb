using System.Text.Json.Nodes;
using NodeAgent.Tests.Manifests;

namespace NodeAgent.Tests.Dashboards;

/// <summary>One query of a panel: where it is (for failure messages) and its PromQL.</summary>
public sealed record PanelQuery(string Dashboard, string Panel, string RefId, string Expression, JsonObject Target)
{
    public override string ToString() => $"{Dashboard} / \"{Panel}\" / {RefId}: {Expression}";
}

/// <summary>The Grafana dashboards of components/grafana-dashboards, read as Grafana reads their JSON model.</summary>
internal static class DashboardFiles
{
    public const string ComponentDirectory = "aspirate-output/components/grafana-dashboards";

    public static string Directory => RepositoryRoot.Combine(ComponentDirectory.Split('/'));

    /// <summary>Every dashboard of the component: each *.json file of its folder.</summary>
    public static IReadOnlyList<string> All() =>
        [.. System.IO.Directory.GetFiles(Directory, "*.json").Order(StringComparer.Ordinal)];

    public static string PathOf(string fileName) => Path.Combine(Directory, fileName);

    public static JsonObject Load(string path) =>
        JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new InvalidDataException($"{path} is not a JSON object.");

    /// <summary>Every panel, those inside (collapsed) rows included.</summary>
    public static IEnumerable<JsonObject> Panels(JsonObject dashboard)
    {
        foreach (var panel in (dashboard["panels"]?.AsArray() ?? []).Select(p => p!.AsObject()))
        {
            yield return panel;
            foreach (var nested in (panel["panels"]?.AsArray() ?? []).Select(p => p!.AsObject()))
            {
                yield return nested;
            }
        }
    }

    public static IEnumerable<JsonObject> Targets(JsonObject panel) =>
        (panel["targets"]?.AsArray() ?? []).Select(t => t!.AsObject());

    /// <summary>Every PromQL expression of every panel of <paramref name="path"/>.</summary>
    public static IReadOnlyList<PanelQuery> Queries(string path)
    {
        var dashboard = Load(path);
        var name = Path.GetFileName(path);
        return
        [
            .. Panels(dashboard).SelectMany(panel => Targets(panel)
                .Where(target => target["expr"] is not null)
                .Select(target => new PanelQuery(name, (string?)panel["title"] ?? "(untitled)", (string?)target["refId"] ?? "?",
                    (string)target["expr"]!, target))),
        ];
    }

    /// <summary>The template variables of <paramref name="dashboard"/>.</summary>
    public static IEnumerable<JsonObject> Variables(JsonObject dashboard) =>
        (dashboard["templating"]?["list"]?.AsArray() ?? []).Select(v => v!.AsObject());
}
