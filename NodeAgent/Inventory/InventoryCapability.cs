using NodeAgent.Shared.Tree;
using Microsoft.Extensions.DependencyInjection;
using NodeAgent.Shared.Hosting;

namespace NodeAgent.Inventory;

/// <summary>
/// The inventory: what is in the monitored directory. Glossary: the <em>inventory</em> is the capability; a
/// <em>scan</em> is one run of it (one walk of the tree, stored as one row of <c>scans</c>); its <em>list</em> is the
/// entries it found (stored once per distinct content in <c>file_lists</c> and <c>file_list_chunks</c>); an
/// <em>entry</em> is one file, directory, link or other node of the tree.
/// </summary>
public sealed class InventoryCapability : ICapability
{
    public string Name => "inventory";

    public IReadOnlyList<SettingKey> Settings => InventorySettings.Keys;

    public void Add(AgentBuilder agent) => agent.AddInventory();
}

public static class InventoryAgentBuilderExtensions
{
    /// <summary>Scans at start and every <c>Agent:Inventory:ScanInterval</c>; with <c>Agent:RunOnce</c>, scans once.</summary>
    public static AgentBuilder AddInventory(this AgentBuilder agent)
    {
        var settings = InventorySettings.Load(agent.Configuration);
        agent.Services.AddSingleton(settings);
        agent.Services.AddSingleton<InventoryMetrics>();
        agent.Services.AddSingleton<InventoryCollector>();

        return agent
            .AddDelivery<ScanRecord, InventoryStore>(
                "inventory",
                new ScanRecordKind(),
                settings.ScanInterval,
                services => services.GetRequiredService<InventoryMetrics>().Delivery,
                _ => settings.SpoolLimits,
                (services, spool) => services.GetRequiredService<InventoryMetrics>().ObserveSpool(() => spool.Count))
            .AddLoop<ScanLoop>()
            .AddRunOnce<ScanOnce>();
    }
}
