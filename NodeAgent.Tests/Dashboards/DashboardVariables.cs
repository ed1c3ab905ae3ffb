using System.Text;
using System.Text.RegularExpressions;

namespace NodeAgent.Tests.Dashboards;

/// <summary>
/// Interpolates a panel's PromQL the way Grafana does before sending it to Prometheus: the dashboard's own variables
/// (a multi-value variable becomes a regular expression, which the queries match with =~) and Grafana's built-in
/// interval and range variables.
/// </summary>
internal sealed partial class DashboardVariables
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    /// <param name="rateInterval">
    /// <c>$__rate_interval</c>: long enough to hold several scrapes (Grafana makes it at least four scrape intervals).
    /// </param>
    public DashboardVariables(IReadOnlyDictionary<string, string> selections, string rateInterval, string interval, string range)
    {
        foreach (var (name, value) in selections)
        {
            _values[name] = value;
        }

        _values["__rate_interval"] = rateInterval;
        _values["__interval"] = interval;
        _values["__range"] = range;
    }

    /// <summary>A multi-value selection as Grafana renders it into a Prometheus query: an escaped alternation.</summary>
    public static string RegexOf(params string[] values) =>
        values.Length == 1 ? EscapeForPromQlRegex(values[0]) : $"({string.Join('|', values.Select(EscapeForPromQlRegex))})";

    /// <summary>Replaces <c>$name</c>, <c>${name}</c> and <c>${name:format}</c>; a variable it does not know fails loudly.</summary>
    public string Interpolate(string expression)
    {
        var result = VariableReference().Replace(expression, match =>
        {
            var name = match.Groups["braced"].Success ? match.Groups["braced"].Value : match.Groups["plain"].Value;
            return _values.TryGetValue(name, out var value)
                ? value
                : throw new InvalidOperationException($"The query uses ${name}, a variable the dashboard test does not define: {expression}");
        });
        return result;
    }

    // A regular expression inside a PromQL double-quoted string: the regex escape's backslash must be escaped too.
    private static string EscapeForPromQlRegex(string value)
    {
        var escaped = new StringBuilder();
        foreach (var c in value)
        {
            if (@"\.+*?()|[]{}^$".Contains(c, StringComparison.Ordinal))
            {
                escaped.Append(@"\\");
            }

            escaped.Append(c);
        }

        return escaped.ToString();
    }

    [GeneratedRegex(@"\$(?:\{(?<braced>[A-Za-z0-9_]+)(?::[A-Za-z]+)?\}|(?<plain>[A-Za-z0-9_]+))")]
    private static partial Regex VariableReference();
}
