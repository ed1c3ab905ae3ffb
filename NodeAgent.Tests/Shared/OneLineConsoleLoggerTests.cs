using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using NodeAgent.Shared.Hosting;

namespace NodeAgent.Tests.Shared;

/// <summary>The one-shot agent's console log writes the lines the long-running agent's console logger writes.</summary>
public sealed class OneLineConsoleLoggerTests
{
    private static readonly DateTimeOffset At = new(2026, 12, 6, 8, 1, 10, 949, TimeSpan.Zero);

    private static string Logged(Action<ILogger> log, LogLevel minimum = LogLevel.Trace)
    {
        var output = new MemoryStream();
        using (var factory = LoggerFactory.Create(logging => logging
                   .SetMinimumLevel(minimum)
                   .AddProvider(new OneLineConsoleLoggerProvider(output, new FakeTimeProvider(At)))))
        {
            log(factory.CreateLogger("NodeAgent.Inventory.InventoryStore"));
        }

        return Encoding.UTF8.GetString(output.ToArray());
    }

    [Fact]
    public void Each_entry_is_one_line_with_utc_time_level_category_event_id_and_message()
    {
        var text = Logged(logger =>
        {
            logger.Log(LogLevel.Information, new EventId(1472454720), "Successfully saved data for node {Node}", "bench");
            logger.Log(LogLevel.Warning, 7, "Careful");
            logger.Log(LogLevel.Debug, 0, "Detail");
        });

        Assert.Equal(
            "2026-12-06T08:01:10.949Z info: NodeAgent.Inventory.InventoryStore[1472454720] Successfully saved data for node bench\n" +
            "2026-12-06T08:01:10.949Z warn: NodeAgent.Inventory.InventoryStore[7] Careful\n" +
            "2026-12-06T08:01:10.949Z dbug: NodeAgent.Inventory.InventoryStore[0] Detail\n",
            text);
    }

    [Fact]
    public void A_message_and_its_exception_over_several_lines_stay_on_one_line()
    {
        var error = new InvalidOperationException($"first{Environment.NewLine}second");

        var text = Logged(logger =>
        {
            logger.Log(LogLevel.Error, 3, error, "Could not store{NewLine}the scan", Environment.NewLine);
            logger.Log(LogLevel.Critical, 4, error, "");
        });

        Assert.Equal(
            "2026-12-06T08:01:10.949Z fail: NodeAgent.Inventory.InventoryStore[3] Could not store the scan System.InvalidOperationException: first second\n" +
            "2026-12-06T08:01:10.949Z crit: NodeAgent.Inventory.InventoryStore[4] System.InvalidOperationException: first second\n",
            text);
    }

    [Fact]
    public void Entries_below_the_configured_level_are_not_written()
    {
        var text = Logged(logger =>
        {
            logger.LogInformation("Not shown");
            logger.LogWarning("Shown");
        }, LogLevel.Warning);

        Assert.Equal("2026-12-06T08:01:10.949Z warn: NodeAgent.Inventory.InventoryStore[0] Shown\n", text);
    }
}
