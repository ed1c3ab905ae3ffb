using System.Globalization;
using Npgsql;

namespace ScaleBench;

/// <summary>The command line. Every default is the full benchmark; scale.sh passes its arguments through.</summary>
internal sealed record Options
{
    public const string Usage = """
        ScaleBench [options]
          --nodes N                 simulated agents (1000)
          --files N                 files per node, in hundreds: students x 10 assignments x 10 files (10000)
          --interval SECONDS        inventory scan interval (60)
          --file-rate N             file events per second across all nodes (1000)
          --process-rate N          kept processes (execs) per second across all nodes (200)
          --steady-minutes M        steady phase: scans, file events, process events (10)
          --unchanged-minutes M     unchanged-trees phase, measured after one settling interval (5)
          --no-baseline             skip the first start's load (every file as a create event, and file_state)
          --baseline-concurrency N  nodes loading their baseline at once (4)
          --content-bytes N         mean size of a source file's content (600)
          --pool-size N             Maximum Pool Size of each node's own data source (1)
          --shared-pool N           instead: one data source for all nodes with this Maximum Pool Size
          --connection STRING       Npgsql connection string (default: PGHOST, PGPORT, PGUSER; Database=monitordb)
          --queries FILE            queries to time at the end, separated by '-- query: <name>' lines
          --results DIR             where the report is written (scale-<timestamp>.txt)
          --label TEXT              a line of context for the report (machine, build, concurrent load)
        """;

    public int Nodes { get; init; } = 1000;

    public int Files { get; init; } = 10_000;

    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(60);

    public double FileRate { get; init; } = 1000;

    public double ProcessRate { get; init; } = 200;

    public TimeSpan Steady { get; init; } = TimeSpan.FromMinutes(10);

    public TimeSpan Unchanged { get; init; } = TimeSpan.FromMinutes(5);

    public bool Baseline { get; init; } = true;

    public int BaselineConcurrency { get; init; } = 4;

    public int ContentBytes { get; init; } = 600;

    public int PoolSize { get; init; } = 1;

    public int SharedPool { get; init; }

    public string ConnectionString { get; init; } = DefaultConnectionString();

    public string? QueriesFile { get; init; }

    public string ResultsDirectory { get; init; } = "bench/results";

    public string? Label { get; init; }

    public int StudentsPerNode => Math.Max(1, Files / (SimulatedNode.AssignmentsPerStudent * SimulatedNode.FilesPerAssignment));

    /// <summary>The options, or null after printing why (or the usage).</summary>
    public static Options? Parse(string[] args)
    {
        var options = new Options();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value");
            int Int() => int.Parse(Value(), CultureInfo.InvariantCulture);
            double Number() => double.Parse(Value(), CultureInfo.InvariantCulture);
            try
            {
                options = name switch
                {
                    "--nodes" => options with { Nodes = Int() },
                    "--files" => options with { Files = Int() },
                    "--interval" => options with { Interval = TimeSpan.FromSeconds(Number()) },
                    "--file-rate" => options with { FileRate = Number() },
                    "--process-rate" => options with { ProcessRate = Number() },
                    "--steady-minutes" => options with { Steady = TimeSpan.FromMinutes(Number()) },
                    "--unchanged-minutes" => options with { Unchanged = TimeSpan.FromMinutes(Number()) },
                    "--no-baseline" => options with { Baseline = false },
                    "--baseline-concurrency" => options with { BaselineConcurrency = Int() },
                    "--content-bytes" => options with { ContentBytes = Int() },
                    "--pool-size" => options with { PoolSize = Int() },
                    "--shared-pool" => options with { SharedPool = Int() },
                    "--connection" => options with { ConnectionString = Value() },
                    "--queries" => options with { QueriesFile = Value() },
                    "--results" => options with { ResultsDirectory = Value() },
                    "--label" => options with { Label = Value() },
                    "--help" or "-h" => throw new OperationCanceledException(),
                    _ => throw new ArgumentException($"unknown option {name}"),
                };
            }
            catch (OperationCanceledException)
            {
                Console.WriteLine(Usage);
                return null;
            }
            catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
            {
                Console.Error.WriteLine($"ScaleBench: {e.Message}\n{Usage}");
                return null;
            }
        }

        if (options.Nodes < 1 || options.Files < 1 || options.Interval <= TimeSpan.Zero || options.ContentBytes < 64 || options.PoolSize < 1
            || options.BaselineConcurrency < 1 || options.FileRate < 0 || options.ProcessRate < 0 || options.SharedPool < 0)
        {
            Console.Error.WriteLine($"ScaleBench: an option is out of range\n{Usage}");
            return null;
        }

        return options;
    }

    private static string DefaultConnectionString()
    {
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = Environment.GetEnvironmentVariable("PGHOST") ?? "127.0.0.1",
            Username = Environment.GetEnvironmentVariable("PGUSER") ?? "postgres",
            Database = "monitordb",
        };
        if (int.TryParse(Environment.GetEnvironmentVariable("PGPORT"), out var port))
        {
            builder.Port = port;
        }

        return builder.ConnectionString;
    }
}
