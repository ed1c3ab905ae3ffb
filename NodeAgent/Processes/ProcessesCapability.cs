using Microsoft.Extensions.DependencyInjection;
using NodeAgent.Shared.Hosting;

namespace NodeAgent.Processes;

/// <summary>
/// Process activity: exec and exit of the node's processes from the kernel's process-event connector, enriched from
/// /proc, attributed to a container, classified and stored. Glossary: a <em>process</em> is a thread group from one
/// exec to its exit (or its next exec); a <em>batch</em> is the rows of one round of the loop.
/// </summary>
public sealed class ProcessesCapability : ICapability
{
    public string Name => "processes";

    public IReadOnlyList<SettingKey> Settings => ProcessesSettings.Keys;

    public void Add(AgentBuilder agent) => agent.AddProcesses();
}

public static class ProcessesAgentBuilderExtensions
{
    /// <summary>Records process activity (a long-running agent only).</summary>
    public static AgentBuilder AddProcesses(this AgentBuilder agent)
    {
        var settings = ProcessesSettings.Load(agent.Configuration);
        if (!settings.Enabled || agent.Settings.RunOnce)
        {
            return agent;
        }

        agent.Services.AddSingleton(settings);
        agent.Services.AddSingleton<ProcessesMetrics>();
        return agent
            .AddDelivery<ProcessBatch, ProcessStore>(
                "processes",
                new ProcessBatchKind(),
                expectedEvery: null,
                services => services.GetRequiredService<ProcessesMetrics>().Delivery,
                _ => settings.SpoolLimits,
                (services, spool) => services.GetRequiredService<ProcessesMetrics>().ObserveSpool(() => spool.Total(b => b.Rows.Count)))
            .AddLoop<ProcessLoop>();
    }
}
