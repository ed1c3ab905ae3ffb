using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace NodeAgent.Shared.Hosting;

/// <summary>
/// The one-shot agent's log (run once, migrate only) on standard output, in the long-running agent's line format (see
/// <see cref="AgentHost"/>: UTC timestamp, level, category[event id], message, any exception on the same line), each line
/// written as it is logged. The framework's console logger cost a one-shot scan about 4 ms before it could begin (its
/// options bound from configuration for three formatters, a writer thread started) to write the handful of lines a
/// one-shot agent logs. The levels are still filtered by the <c>Logging</c> section (<c>Logging:Console</c> included).
/// </summary>
[ProviderAlias("Console")]
internal sealed class OneLineConsoleLoggerProvider(Stream output, TimeProvider time) : ILoggerProvider
{
    public const string TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";

    private readonly Lock _writing = new();

    public OneLineConsoleLoggerProvider() : this(Console.OpenStandardOutput(), TimeProvider.System)
    {
    }

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, this);

    public void Dispose() => output.Flush();

    /// <summary>One entry as one line, as <c>AddSimpleConsole</c> writes it with <c>SingleLine</c> and a UTC timestamp.</summary>
    internal static string Format(DateTimeOffset now, LogLevel level, string category, EventId eventId, string? message, Exception? exception)
    {
        var line = new StringBuilder(128 + (message?.Length ?? 0))
            .Append(now.UtcDateTime.ToString(TimestampFormat, CultureInfo.InvariantCulture))
            .Append(Level(level)).Append(": ")
            .Append(category).Append('[').Append(eventId.Id.ToString(CultureInfo.InvariantCulture)).Append(']');
        AppendOnOneLine(line, message);
        AppendOnOneLine(line, exception?.ToString());
        return line.Append('\n').ToString();
    }

    private static void AppendOnOneLine(StringBuilder line, string? text)
    {
        if (!string.IsNullOrEmpty(text))
        {
            line.Append(' ').Append(text.Replace(Environment.NewLine, " ", StringComparison.Ordinal));
        }
    }

    private static string Level(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        _ => "crit",
    };

    private void Write(LogLevel level, string category, EventId eventId, string? message, Exception? exception)
    {
        var bytes = Encoding.UTF8.GetBytes(Format(time.GetUtcNow(), level, category, eventId, message, exception));
        lock (_writing)
        {
            output.Write(bytes);
        }
    }

    private sealed class Logger(string category, OneLineConsoleLoggerProvider provider) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            var message = formatter(state, exception);
            if (message is null && exception is null)
            {
                return;
            }

            provider.Write(logLevel, category, eventId, message, exception);
        }
    }
}
