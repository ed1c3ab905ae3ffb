using Microsoft.Extensions.Configuration;
using NodeAgent.Inventory;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Delivery;

namespace NodeAgent.Tests.Shared;

/// <summary>
/// The settings read at start: <see cref="AgentSettings"/> (section <c>Agent</c>) and <see cref="InventorySettings"/>
/// (section <c>Agent:Inventory</c>, whose keys were once directly under <c>Agent</c> and still work there).
/// </summary>
public sealed class SettingsTests
{
    private const string ConnectionString = "Host=h;Database=d;Username=u";

    private static IConfiguration Configuration(params (string Key, string? Value)[] values) =>
        new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value)))
            .Build();

    private static IConfiguration WithDatabase(params (string Key, string? Value)[] values) =>
        Configuration([("ConnectionStrings:monitordb", ConnectionString), .. values]);

    private static string LoadError(Func<object> load) => Assert.Throws<AgentConfigurationException>(load).Message;

    // Inventory: defaults, new keys, old keys

    [Fact]
    public void Without_inventory_keys_the_defaults_apply()
    {
        var settings = InventorySettings.Load(Configuration());

        Assert.Equal(TimeSpan.FromMinutes(1), settings.ScanInterval);
        Assert.Equal(1440, settings.SpoolCapacity);
        Assert.Equal(1_000_000, settings.SpoolMaxEntries);
    }

    [Fact]
    public void Inventory_keys_are_read_from_the_Agent_Inventory_section()
    {
        var settings = InventorySettings.Load(Configuration(
            ("Agent:Inventory:ScanInterval", "00:05:00"),
            ("Agent:Inventory:SpoolCapacity", "12"),
            ("Agent:Inventory:SpoolMaxEntries", "3456")));

        Assert.Equal(TimeSpan.FromMinutes(5), settings.ScanInterval);
        Assert.Equal(12, settings.SpoolCapacity);
        Assert.Equal(3456, settings.SpoolMaxEntries);
        Assert.Equal(new SpoolLimits(12, 3456), settings.SpoolLimits);
    }

    [Fact]
    public void Scan_interval_spool_capacity_and_spool_max_entries_from_the_old_keys_still_work()
    {
        var settings = InventorySettings.Load(Configuration(
            ("Agent:ScanInterval", "00:00:30"),
            ("Agent:SpoolCapacity", "7"),
            ("Agent:SpoolMaxEntries", "890")));

        Assert.Equal(TimeSpan.FromSeconds(30), settings.ScanInterval);
        Assert.Equal(7, settings.SpoolCapacity);
        Assert.Equal(890, settings.SpoolMaxEntries);
    }

    [Fact]
    public void When_both_the_new_and_the_old_key_are_set_the_new_key_wins()
    {
        var settings = InventorySettings.Load(Configuration(
            ("Agent:ScanInterval", "00:00:30"),
            ("Agent:Inventory:ScanInterval", "00:02:00"),
            ("Agent:SpoolCapacity", "7"),
            ("Agent:Inventory:SpoolCapacity", "8"),
            ("Agent:SpoolMaxEntries", "890"),
            ("Agent:Inventory:SpoolMaxEntries", "891")));

        Assert.Equal(TimeSpan.FromMinutes(2), settings.ScanInterval);
        Assert.Equal(8, settings.SpoolCapacity);
        Assert.Equal(891, settings.SpoolMaxEntries);
    }

    // Inventory: bad values name the key they were read from

    [Theory]
    [InlineData("Agent:Inventory:ScanInterval", "soon")]
    [InlineData("Agent:ScanInterval", "soon")]
    public void A_scan_interval_that_is_not_a_time_span_is_reported_with_the_key_it_was_read_from(string key, string value)
    {
        var message = LoadError(() => InventorySettings.Load(Configuration((key, value))));

        Assert.StartsWith($"{key} '{value}' ", message, StringComparison.Ordinal);
        Assert.Contains("not a time span", message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Agent:Inventory:ScanInterval", "00:00:00.500")]
    [InlineData("Agent:ScanInterval", "2.00:00:00")]
    public void A_scan_interval_outside_one_second_to_one_day_is_reported_with_its_range(string key, string value)
    {
        var message = LoadError(() => InventorySettings.Load(Configuration((key, value))));

        Assert.Equal($"{key} '{value}' must be between 00:00:01 and 1.00:00:00.", message);
    }

    [Theory]
    [InlineData("Agent:Inventory:SpoolCapacity", "lots", "1 to 1000000")]
    [InlineData("Agent:SpoolCapacity", "0", "1 to 1000000")]
    [InlineData("Agent:SpoolCapacity", "1000001", "1 to 1000000")]
    [InlineData("Agent:Inventory:SpoolMaxEntries", "-5", "1 to 1000000000")]
    [InlineData("Agent:SpoolMaxEntries", "1.5", "1 to 1000000000")]
    public void A_spool_bound_that_is_not_a_whole_number_in_range_is_reported_with_the_key_it_was_read_from(string key, string value, string range)
    {
        var message = LoadError(() => InventorySettings.Load(Configuration((key, value))));

        Assert.Equal($"{key} '{value}' must be a whole number from {range}.", message);
    }

    [Fact]
    public void A_bad_old_key_is_not_reported_when_the_new_key_is_set()
    {
        var settings = InventorySettings.Load(Configuration(
            ("Agent:SpoolCapacity", "lots"),
            ("Agent:Inventory:SpoolCapacity", "9")));

        Assert.Equal(9, settings.SpoolCapacity);
    }

    [Fact]
    public void A_bad_new_key_is_reported_under_its_new_name_even_when_the_old_key_is_good()
    {
        var message = LoadError(() => InventorySettings.Load(Configuration(
            ("Agent:ScanInterval", "00:01:00"),
            ("Agent:Inventory:ScanInterval", "never"))));

        Assert.StartsWith("Agent:Inventory:ScanInterval 'never' ", message, StringComparison.Ordinal);
    }

    // Agent: node, mount path, run-once, database

    [Fact]
    public void Without_agent_keys_the_node_is_this_machine_in_lowercase_the_mount_path_is_the_default_and_the_agent_keeps_running()
    {
        var settings = AgentSettings.Load(WithDatabase());

        Assert.Equal(Environment.MachineName.ToLowerInvariant(), settings.NodeName);
        Assert.Equal("/mnt/node-data", settings.MountPath);
        Assert.False(settings.RunOnce);
    }

    [Fact]
    public void Agent_keys_are_read_from_the_Agent_section()
    {
        var settings = AgentSettings.Load(WithDatabase(
            ("Agent:NodeName", "worker-7"),
            ("Agent:MountPath", "/data/watched"),
            ("Agent:RunOnce", "true")));

        Assert.Equal("worker-7", settings.NodeName);
        Assert.Equal("/data/watched", settings.MountPath);
        Assert.True(settings.RunOnce);
    }

    [Theory]
    [InlineData("/data/watched/", "/data/watched")]
    [InlineData("/", "/")]
    public void A_trailing_slash_on_the_mount_path_is_trimmed_but_the_root_stays_the_root(string configured, string expected)
    {
        var settings = AgentSettings.Load(WithDatabase(("Agent:MountPath", configured)));

        Assert.Equal(expected, settings.MountPath);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void An_empty_mount_path_is_an_error_naming_the_key(string configured)
    {
        var message = LoadError(() => AgentSettings.Load(WithDatabase(("Agent:MountPath", configured))));

        Assert.StartsWith("Agent:MountPath is empty", message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("data/watched")]
    [InlineData("./data")]
    public void A_relative_mount_path_is_an_error_naming_the_key_and_the_value(string configured)
    {
        var message = LoadError(() => AgentSettings.Load(WithDatabase(("Agent:MountPath", configured))));

        Assert.Equal($"Agent:MountPath '{configured}' must be an absolute path.", message);
    }

    [Fact]
    public void A_run_once_value_that_is_not_a_boolean_is_an_error_naming_the_key_and_the_value()
    {
        var message = LoadError(() => AgentSettings.Load(WithDatabase(("Agent:RunOnce", "yes"))));

        Assert.Equal("Agent:RunOnce 'yes' is not a boolean (expected true or false).", message);
    }

    [Fact]
    public void Without_a_connection_string_or_PGHOST_the_error_names_both()
    {
        var message = LoadError(() => AgentSettings.Load(Configuration()));

        Assert.Contains("ConnectionStrings:monitordb", message, StringComparison.Ordinal);
        Assert.Contains("PGHOST", message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_database_description_names_host_port_database_and_user_but_never_the_password()
    {
        var settings = AgentSettings.Load(Configuration(
            ("ConnectionStrings:monitordb", "Host=db.example;Port=6543;Database=d;Username=u;Password=s3cret-pw")));

        Assert.Equal("db.example:6543/d as u", settings.DatabaseDescription);
        Assert.DoesNotContain("s3cret-pw", settings.DatabaseDescription, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("60")]
    public void A_bare_number_for_the_scan_interval_is_refused_rather_than_read_as_days(string value)
    {
        var message = LoadError(() => InventorySettings.Load(Configuration(("Agent:Inventory:ScanInterval", value))));

        Assert.Contains($"Agent:Inventory:ScanInterval '{value}' is not a time span", message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_empty_new_key_does_not_hide_the_old_one()
    {
        var settings = InventorySettings.Load(Configuration(("Agent:Inventory:ScanInterval", ""), ("Agent:ScanInterval", "00:00:10")));

        Assert.Equal(TimeSpan.FromSeconds(10), settings.ScanInterval);
    }

    [Fact]
    public void Loading_inventory_settings_without_a_configuration_is_a_programming_error()
    {
        Assert.Throws<ArgumentNullException>(() => InventorySettings.Load(null!));
    }
}

