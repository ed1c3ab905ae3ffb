using System.Diagnostics;
using NodeAgent.Tests.Manifests;
using Npgsql;

namespace NodeAgent.Tests.Agent;

/// <summary>run-local.sh's verification query connects with psql: the connection string must reach it whole.</summary>
public sealed class RunLocalTests
{
    [Theory]
    [InlineData("plain")]
    [InlineData("with;semicolon")]
    [InlineData("with=equals;and 'quotes' and \"doubles\"")]
    [InlineData(" spaced ")]
    public async Task Connection_string_becomes_the_same_libpq_variables_whatever_the_password_holds(string password)
    {
        // Npgsql writes (and quotes) the string as a user's tooling would; the script must read back what Npgsql reads.
        var connectionString = new NpgsqlConnectionStringBuilder
        {
            Host = "db.example", Port = 5433, Database = "monitordb", Username = "monitor", Password = password,
            SslMode = SslMode.VerifyFull,
        }.ConnectionString;

        var variables = await LibpqVariablesAsync(connectionString);

        Assert.Equal("db.example", variables["PGHOST"]);
        Assert.Equal("5433", variables["PGPORT"]);
        Assert.Equal("monitordb", variables["PGDATABASE"]);
        Assert.Equal("monitor", variables["PGUSER"]);
        Assert.Equal(new NpgsqlConnectionStringBuilder(connectionString).Password, variables["PGPASSWORD"]);
        Assert.Equal("verify-full", variables["PGSSLMODE"]);
    }

    /// <summary>Runs NodeAgent/libpq-env.py as run-local.sh does (eval in bash) and reads the variables back.</summary>
    private static async Task<Dictionary<string, string>> LibpqVariablesAsync(string connectionString)
    {
        var script = Path.Combine(RepositoryRoot.Path, "NodeAgent", "libpq-env.py");
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("""eval "$(python3 "$0" "$1")" && printf '%s\0' "PGHOST=$PGHOST" "PGPORT=$PGPORT" "PGDATABASE=$PGDATABASE" "PGUSER=$PGUSER" "PGPASSWORD=$PGPASSWORD" "PGSSLMODE=$PGSSLMODE" """);
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(connectionString);
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, error);
        return output.Split('\0', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split('=', 2))
            .ToDictionary(parts => parts[0], parts => parts[1]);
    }
}
