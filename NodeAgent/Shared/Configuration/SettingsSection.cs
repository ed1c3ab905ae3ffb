using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace NodeAgent.Shared.Configuration;

/// <summary>
/// Reads and checks the values of one configuration section. A key that moved (for example <c>Agent:ScanInterval</c>
/// to <c>Agent:Inventory:ScanInterval</c>) names its old full key as an alias, read when the new one is not set, so
/// that no deployment breaks. A bad value stops the agent with a message naming the key it was read from.
/// </summary>
public sealed class SettingsSection(IConfiguration configuration, string path)
{
    private readonly IConfiguration _configuration = configuration ?? throw new ArgumentNullException(nameof(configuration));

    public string Path => path;

    /// <summary>The raw value (null when not set), with the key it came from.</summary>
    public (string? Value, string Key) Raw(string key, string? alias = null)
    {
        var full = $"{path}:{key}";
        var value = _configuration[full];
        if (string.IsNullOrWhiteSpace(value) && alias is not null && !string.IsNullOrWhiteSpace(_configuration[alias]))
        {
            return (_configuration[alias], alias);
        }

        return (value, full);
    }

    public string? Text(string key, string? alias = null) => Raw(key, alias).Value;

    public TimeSpan TimeSpan(string key, TimeSpan fallback, TimeSpan min, TimeSpan max, string? alias = null)
    {
        var (raw, from) = Raw(key, alias);
        if (string.IsNullOrWhiteSpace(raw))
        {
            return fallback;
        }

        // A bare number ("60") would parse as days: a time span must say hh:mm:ss.
        if (!raw.Contains(':', StringComparison.Ordinal) || !System.TimeSpan.TryParse(raw, CultureInfo.InvariantCulture, out var value))
        {
            throw new AgentConfigurationException($"{from} '{raw}' is not a time span (expected hh:mm:ss, e.g. 00:01:00).");
        }

        return value >= min && value <= max
            ? value
            : throw new AgentConfigurationException(
                $"{from} '{raw}' must be between {min.ToString("c", CultureInfo.InvariantCulture)} and {max.ToString("c", CultureInfo.InvariantCulture)}.");
    }

    public bool Bool(string key, bool fallback, string? alias = null)
    {
        var (raw, from) = Raw(key, alias);
        if (string.IsNullOrWhiteSpace(raw))
        {
            return fallback;
        }

        return bool.TryParse(raw.Trim(), out var value)
            ? value
            : throw new AgentConfigurationException($"{from} '{raw}' is not a boolean (expected true or false).");
    }

    public long Integer(string key, long fallback, long min, long max, string? alias = null)
    {
        var (raw, from) = Raw(key, alias);
        if (string.IsNullOrWhiteSpace(raw))
        {
            return fallback;
        }

        if (!long.TryParse(raw.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new AgentConfigurationException($"{from} '{raw}' must be a whole number from {min} to {max}.");
        }

        return value;
    }

    /// <summary>
    /// A list: comma-separated in one value (<c>--Key=a,b</c>, <c>Key__Sub=a,b</c>), or as the section's numbered
    /// children (a JSON array in appsettings.json). Not set: <paramref name="fallback"/>; set to an empty value: empty.
    /// </summary>
    public IReadOnlyList<string> List(string key, IReadOnlyList<string> fallback)
    {
        var full = $"{path}:{key}";
        var children = _configuration.GetSection(full).GetChildren().Where(c => c.Value is not null).ToList();
        if (children.Count > 0)
        {
            return [.. children.Select(c => c.Value!.Trim()).Where(v => v.Length > 0)];
        }

        var value = _configuration[full];
        return value is null
            ? fallback
            : [.. value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
    }

    /// <summary>Converts a value read from <paramref name="key"/>, turning a parser's complaint into one naming the key.</summary>
    public T Parsed<T>(string key, Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (ArgumentException e)
        {
            throw new AgentConfigurationException($"{path}:{key}: {e.Message}");
        }
    }
}
