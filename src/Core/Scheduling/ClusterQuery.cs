using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Serverless.Core.Api;
using Serverless.Core.ContainerInstances;

namespace Serverless.Core.Scheduling;

/// <summary>
/// What the cluster query language can ask about one container instance. Plain data, so a query
/// is a pure function of it.
/// </summary>
/// <param name="Attributes">Attribute name to value; a valueless attribute (ECS capabilities) maps to null.</param>
/// <param name="TaskGroups">The groups of the tasks on the instance (<c>service:web</c>, <c>family:batch</c>, ...).</param>
public sealed record QueryTarget(
    string Ec2InstanceId,
    IReadOnlyDictionary<string, string?> Attributes,
    bool AgentConnected,
    string? AgentVersion,
    DateTimeOffset RegisteredAt,
    int RunningTasksCount,
    IReadOnlySet<string> TaskGroups)
{
    /// <summary>
    /// The instance as a query sees it at <paramref name="now"/>: connected when its worker's last
    /// heartbeat is at most <paramref name="agentTimeout"/> old; its task groups are
    /// <paramref name="taskGroups"/> when given, else the groups recorded on its reservations.
    /// </summary>
    public static QueryTarget From(ContainerInstanceRecord instance, DateTimeOffset now, TimeSpan agentTimeout, IReadOnlySet<string>? taskGroups = null)
        => From(instance, taskGroups) with { AgentConnected = instance.IsAgentConnected(now, agentTimeout) };

    /// <summary>
    /// The instance as a placement constraint sees it: only instances whose agent is connected
    /// reach the <c>memberOf</c> constraints (<see cref="Placement"/> filters the others out first),
    /// so <see cref="AgentConnected"/> is taken as true. Where disconnected instances are judged
    /// too (ListContainerInstances' filter), use the overload that takes the time.
    /// </summary>
    public static QueryTarget From(ContainerInstanceRecord instance, IReadOnlySet<string>? taskGroups = null)
    {
        var attributes = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var attribute in instance.Attributes) attributes[attribute.Name] = attribute.Value;
        return new QueryTarget(
            instance.Ec2InstanceId,
            attributes,
            true,
            instance.AgentVersion,
            instance.RegisteredAt,
            instance.CountedRunningTasks,
            taskGroups ?? instance.Reservations.Select(r => r.Group).OfType<string>().ToHashSet(StringComparer.Ordinal));
    }
}

/// <summary>
/// ECS's cluster query language, as ListContainerInstances' <c>filter</c> and <c>memberOf</c>
/// placement constraints use it: <c>subject operator [argument]</c> expressions combined with
/// <c>and</c>/<c>&amp;&amp;</c>, <c>or</c>/<c>||</c>, <c>not</c>/<c>!</c> and parentheses
/// (<c>not</c> binds tightest, then <c>and</c>, then <c>or</c>).
/// <list type="bullet">
/// <item>Subjects: <c>attribute:name</c>, <c>ec2InstanceId</c>, <c>agentConnected</c>, <c>agentVersion</c>,
/// <c>registeredAt</c>, <c>runningTasksCount</c>, <c>task:group</c>; each accepts the operators the
/// ECS developer guide lists for it (<c>attribute:</c> accepts all; <c>task:group</c> all but the ordering ones).</item>
/// <item>Operators: <c>==</c> equals, <c>!=</c> not_equals, <c>&gt;</c> greater_than, <c>&gt;=</c>
/// greater_than_equal, <c>&lt;</c> less_than, <c>&lt;=</c> less_than_equal, <c>exists</c>,
/// <c>!exists</c> not_exists, <c>in</c>, <c>!in</c> not_in, <c>=~</c> matches, <c>!~</c> not_matches.</item>
/// <item>Arguments: a literal, quoted with <c>'</c> or <c>"</c> when it holds spaces or parentheses
/// (inside quotes <c>\</c> escapes only the quote and itself); <c>in</c> takes a list <c>[a, b]</c>;
/// <c>matches</c> a regular expression (Java's syntax on ECS; .NET's here, which agrees on the
/// common constructs), matched against the whole value as Java's <c>Pattern.matches</c> does.</item>
/// </list>
/// Semantics where the guide is silent: every negated operator is exactly the negation of its
/// positive one, so <c>attribute:x != a</c> holds when the instance has no attribute <c>x</c>;
/// <c>task:group</c> is the set of groups on the instance, and a positive operator holds when any
/// group satisfies it (<c>task:group != db</c> thus means "no task of group db here", like
/// <c>not(task:group == db)</c>); ordering on an attribute compares numbers when both sides are
/// numbers, else ordinal strings, and is false when the attribute is missing; <c>agentVersion</c>
/// compares dotted numbers (1.9.0 &lt; 1.14.5); <c>registeredAt</c> against a bare date compares
/// calendar days (UTC), against a time compares to the second (a time without offset is UTC).
/// </summary>
public abstract class ClusterQuery
{
    /// <summary>ECS caps a placement constraint's expression at 2000 characters.</summary>
    public const int MaxLength = 2000;

    private protected ClusterQuery()
    {
    }

    /// <summary>Whether the instance described by <paramref name="target"/> satisfies the query.</summary>
    public abstract bool Matches(QueryTarget target);

    /// <summary>Shorthand for <see cref="Matches(QueryTarget)"/> of <see cref="QueryTarget.From"/>.</summary>
    public bool Matches(ContainerInstanceRecord instance, DateTimeOffset now, TimeSpan agentTimeout)
        => Matches(QueryTarget.From(instance, now, agentTimeout));

    /// <summary>A canonical form, fully parenthesised, that shows how the expression was grouped.</summary>
    public abstract override string ToString();

    /// <summary>
    /// Parses <paramref name="expression"/>, or throws <see cref="InvalidParameterException"/> whose
    /// message names the problem and its position (1-based).
    /// </summary>
    public static ClusterQuery Parse(string expression)
    {
        if (string.IsNullOrWhiteSpace(expression))
            throw new InvalidParameterException("The cluster query expression is empty.");
        if (expression.Length > MaxLength)
            throw new InvalidParameterException($"The cluster query expression is {expression.Length} characters long; at most {MaxLength} are allowed.");
        return new Parser(expression).ParseAll();
    }

    private sealed class And(ClusterQuery left, ClusterQuery right) : ClusterQuery
    {
        public override bool Matches(QueryTarget target) => left.Matches(target) && right.Matches(target);
        public override string ToString() => $"({left} and {right})";
    }

    private sealed class Or(ClusterQuery left, ClusterQuery right) : ClusterQuery
    {
        public override bool Matches(QueryTarget target) => left.Matches(target) || right.Matches(target);
        public override string ToString() => $"({left} or {right})";
    }

    private sealed class Not(ClusterQuery inner) : ClusterQuery
    {
        public override bool Matches(QueryTarget target) => !inner.Matches(target);
        public override string ToString() => $"(not {inner})";
    }

    private enum Subject
    {
        Attribute,
        Ec2InstanceId,
        AgentConnected,
        AgentVersion,
        RegisteredAt,
        RunningTasksCount,
        TaskGroup,
    }

    /// <summary>The positive operators; a negated one is its positive with <see cref="Comparison.Negated"/> set.</summary>
    private enum Op
    {
        Equals,
        GreaterThan,
        GreaterThanEqual,
        LessThan,
        LessThanEqual,
        Exists,
        In,
        Matches,
    }

    /// <summary>One <c>subject operator [argument]</c>, with its argument already parsed for the subject's type.</summary>
    private sealed class Comparison : ClusterQuery
    {
        private static readonly TimeSpan RegexTimeout = TimeSpan.FromMilliseconds(100);

        public required Subject Kind { get; init; }
        public string? AttributeName { get; init; }
        public required Op Operator { get; init; }
        /// <summary>A negated operator (<c>!=</c>, <c>!in</c>, <c>!exists</c>, <c>!~</c>): the opposite of <see cref="Operator"/>.</summary>
        public bool Negated { get; init; }
        public required string Text { get; init; }
        public IReadOnlyList<string> Values { get; init; } = [];
        public Regex? Pattern { get; init; }
        public long Number { get; init; }
        public bool Flag { get; init; }
        public Version? AgentVersion { get; init; }
        public DateTimeOffset Time { get; init; }
        public bool IsDateOnly { get; init; }

        public override string ToString() => Text;

        public override bool Matches(QueryTarget target) => Negated != MatchesPositive(target);

        private bool MatchesPositive(QueryTarget target) => Kind switch
        {
            Subject.Attribute => MatchesAttribute(target),
            Subject.Ec2InstanceId => MatchesString(target.Ec2InstanceId),
            Subject.AgentConnected => Operator switch
            {
                Op.Equals => target.AgentConnected == Flag,
                _ => MatchesString(target.AgentConnected ? "true" : "false"),
            },
            Subject.AgentVersion => TryParseVersion(target.AgentVersion, out var version) && Ordered(version.CompareTo(AgentVersion)),
            Subject.RegisteredAt => Ordered(IsDateOnly
                ? DateOnlyOf(target.RegisteredAt).CompareTo(DateOnlyOf(Time))
                : Seconds(target.RegisteredAt).CompareTo(Seconds(Time))),
            Subject.RunningTasksCount => Ordered(((long)target.RunningTasksCount).CompareTo(Number)),
            Subject.TaskGroup => Operator == Op.Exists ? target.TaskGroups.Count > 0 : target.TaskGroups.Any(MatchesString),
            _ => false,
        };

        private bool MatchesAttribute(QueryTarget target)
        {
            if (!target.Attributes.TryGetValue(AttributeName!, out var value)) return false;
            if (Operator == Op.Exists) return true;
            if (value is null) return false;
            if (Operator is Op.GreaterThan or Op.GreaterThanEqual or Op.LessThan or Op.LessThanEqual)
            {
                var argument = Values[0];
                var order = decimal.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var left)
                            && decimal.TryParse(argument, NumberStyles.Float, CultureInfo.InvariantCulture, out var right)
                    ? left.CompareTo(right)
                    : string.CompareOrdinal(value, argument);
                return Ordered(order);
            }
            return MatchesString(value);
        }

        private bool MatchesString(string value) => Operator switch
        {
            Op.Equals => value == Values[0],
            Op.In => Values.Contains(value, StringComparer.Ordinal),
            Op.Matches => IsMatch(value),
            _ => false,
        };

        private bool IsMatch(string value)
        {
            try
            {
                return Pattern!.IsMatch(value);
            }
            catch (RegexMatchTimeoutException)
            {
                throw new InvalidParameterException($"The pattern of '{Text}' takes too long to evaluate.");
            }
        }

        private bool Ordered(int order) => Operator switch
        {
            Op.Equals => order == 0,
            Op.GreaterThan => order > 0,
            Op.GreaterThanEqual => order >= 0,
            Op.LessThan => order < 0,
            Op.LessThanEqual => order <= 0,
            _ => false,
        };

        private static DateOnly DateOnlyOf(DateTimeOffset time) => DateOnly.FromDateTime(time.UtcDateTime);

        private static long Seconds(DateTimeOffset time) => time.ToUnixTimeSeconds();

        public static Regex CompileRegex(string pattern)
            => new($@"\A(?:{pattern})\z", RegexOptions.CultureInvariant, RegexTimeout);
    }

    /// <summary>
    /// Dotted numeric versions (<c>1.14.5</c>, an optional leading <c>v</c>); missing parts count
    /// as zero, so 1.14 equals 1.14.0.
    /// </summary>
    private static bool TryParseVersion(string? text, out Version version)
    {
        version = new Version();
        if (string.IsNullOrWhiteSpace(text)) return false;
        var trimmed = text.Trim();
        if (trimmed.StartsWith('v') || trimmed.StartsWith('V')) trimmed = trimmed[1..];
        var parts = trimmed.Split('.');
        if (parts.Length is 0 or > 4) return false;
        var numbers = new int[4];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out numbers[i])) return false;
        }
        version = new Version(numbers[0], numbers[1], numbers[2], numbers[3]);
        return true;
    }

    private static readonly string[] DateFormats =
    [
        "yyyy-MM-dd'T'HH:mm:sszzz",
        "yyyy-MM-dd'T'HH:mm:ss'Z'",
        "yyyy-MM-dd'T'HH:mm:ss",
        "yyyy-MM-dd",
    ];

    /// <summary>A recursive-descent parser over the characters; positions in messages are 1-based.</summary>
    private sealed class Parser(string text)
    {
        private static readonly (string Token, Op Op, bool Negated)[] SymbolOperators =
        [
            ("!exists", Op.Exists, true),
            ("!in", Op.In, true),
            ("==", Op.Equals, false),
            ("!=", Op.Equals, true),
            (">=", Op.GreaterThanEqual, false),
            ("<=", Op.LessThanEqual, false),
            ("=~", Op.Matches, false),
            ("!~", Op.Matches, true),
            (">", Op.GreaterThan, false),
            ("<", Op.LessThan, false),
        ];

        private static readonly Dictionary<string, (Op Op, bool Negated)> WordOperators = new(StringComparer.OrdinalIgnoreCase)
        {
            ["equals"] = (Op.Equals, false),
            ["not_equals"] = (Op.Equals, true),
            ["greater_than"] = (Op.GreaterThan, false),
            ["greater_than_equal"] = (Op.GreaterThanEqual, false),
            ["less_than"] = (Op.LessThan, false),
            ["less_than_equal"] = (Op.LessThanEqual, false),
            ["exists"] = (Op.Exists, false),
            ["not_exists"] = (Op.Exists, true),
            ["in"] = (Op.In, false),
            ["not_in"] = (Op.In, true),
            ["matches"] = (Op.Matches, false),
            ["not_matches"] = (Op.Matches, true),
        };

        private static readonly Op[] Ordering = [Op.Equals, Op.GreaterThan, Op.GreaterThanEqual, Op.LessThan, Op.LessThanEqual];
        private static readonly Op[] Textual = [Op.Equals, Op.In, Op.Matches];

        /// <summary>The operators the ECS developer guide lists per subject (negations included with their positives).</summary>
        private static readonly Dictionary<Subject, Op[]> ValidOperators = new()
        {
            [Subject.Attribute] = Enum.GetValues<Op>(),
            [Subject.Ec2InstanceId] = Textual,
            [Subject.AgentConnected] = Textual,
            [Subject.AgentVersion] = Ordering,
            [Subject.RegisteredAt] = Ordering,
            [Subject.RunningTasksCount] = Ordering,
            [Subject.TaskGroup] = [.. Textual, Op.Exists],
        };

        /// <summary>Attribute names as PutAttributes allows them.</summary>
        private static readonly Regex AttributeName = new(@"^[a-zA-Z0-9_\-./\\]{1,128}$", RegexOptions.CultureInvariant);

        private int _position;

        public ClusterQuery ParseAll()
        {
            var query = ParseOr();
            SkipSpace();
            if (_position < text.Length)
                throw Error(text[_position] == ')' ? "unbalanced ')'" : $"unexpected '{Snippet()}'; expected 'and', 'or' or the end");
            return query;
        }

        private ClusterQuery ParseOr()
        {
            var left = ParseAnd();
            while (TryKeyword("or", "||")) left = new Or(left, ParseAnd());
            return left;
        }

        private ClusterQuery ParseAnd()
        {
            var left = ParseUnary();
            while (TryKeyword("and", "&&")) left = new And(left, ParseUnary());
            return left;
        }

        private ClusterQuery ParseUnary()
        {
            SkipSpace();
            if (_position >= text.Length) throw Error("expected an expression");
            if (TryKeyword("not", "!")) return new Not(ParseUnary());
            if (text[_position] == '(')
            {
                var open = _position;
                _position++;
                var inner = ParseOr();
                SkipSpace();
                if (_position >= text.Length || text[_position] != ')')
                    throw new InvalidParameterException(Message($"'(' at character {open + 1} is never closed", _position));
                _position++;
                return inner;
            }
            return ParseComparison();
        }

        /// <summary>
        /// Consumes a boolean keyword: the word form must end at a word boundary (so <c>order</c>
        /// is not <c>or</c> + <c>der</c>), the symbol form must not start an operator (<c>!=</c>).
        /// </summary>
        private bool TryKeyword(string word, string symbol)
        {
            SkipSpace();
            if (string.Compare(text, _position, word, 0, word.Length, StringComparison.OrdinalIgnoreCase) == 0
                && (_position + word.Length == text.Length || !IsWordChar(text[_position + word.Length])))
            {
                _position += word.Length;
                return true;
            }
            if (string.CompareOrdinal(text, _position, symbol, 0, symbol.Length) == 0
                && !(symbol == "!" && _position + 1 < text.Length && text[_position + 1] is '=' or '~'))
            {
                _position += symbol.Length;
                return true;
            }
            return false;
        }

        private ClusterQuery ParseComparison()
        {
            var start = _position;
            var subjectText = ReadWhile(c => !char.IsWhiteSpace(c) && "=!<>()[],'\"&|".IndexOf(c) < 0);
            if (subjectText.Length == 0) throw Error($"expected a subject, found '{Snippet()}'", start);
            var (subject, attributeName) = ParseSubject(subjectText, start);

            SkipSpace();
            var operatorAt = _position;
            var (op, negated) = ReadOperator(subjectText);
            if (!ValidOperators[subject].Contains(op))
                throw Error($"operator '{text[operatorAt.._position]}' cannot be used with subject '{subjectText}'", operatorAt);

            IReadOnlyList<string> values = [];
            if (op == Op.In) values = ReadList();
            else if (op != Op.Exists) values = [ReadLiteral()];

            return Build(subject, attributeName, op, negated, values, text[start.._position].Trim(), operatorAt);
        }

        private (Subject, string?) ParseSubject(string subject, int at)
        {
            if (subject.StartsWith("attribute:", StringComparison.Ordinal))
            {
                var name = subject["attribute:".Length..];
                if (!AttributeName.IsMatch(name))
                    throw Error($"'{name}' is not a valid attribute name (1 to 128 letters, numbers, hyphens, underscores, periods, slashes or back slashes)", at);
                return (Subject.Attribute, name);
            }
            return subject switch
            {
                "ec2InstanceId" => (Subject.Ec2InstanceId, null),
                "agentConnected" => (Subject.AgentConnected, null),
                "agentVersion" => (Subject.AgentVersion, null),
                "registeredAt" => (Subject.RegisteredAt, null),
                "runningTasksCount" => (Subject.RunningTasksCount, null),
                "task:group" => (Subject.TaskGroup, null),
                _ => throw Error($"unknown subject '{subject}'; expected attribute:<name>, ec2InstanceId, agentConnected, agentVersion, registeredAt, runningTasksCount or task:group", at),
            };
        }

        private (Op Op, bool Negated) ReadOperator(string subject)
        {
            if (_position >= text.Length) throw Error($"expected an operator after '{subject}'");
            foreach (var (token, op, negated) in SymbolOperators)
            {
                if (string.CompareOrdinal(text, _position, token, 0, token.Length) != 0) continue;
                // "!in"/"!exists" are words: "!inactive" is not "!in" followed by "active".
                if (char.IsAsciiLetter(token[^1]) && _position + token.Length < text.Length && IsWordChar(text[_position + token.Length])) continue;
                _position += token.Length;
                return (op, negated);
            }
            var start = _position;
            var word = ReadWhile(IsWordChar);
            if (WordOperators.TryGetValue(word, out var found)) return found;
            _position = start;
            throw Error(word.Length > 0 ? $"unknown operator '{word}'" : $"expected an operator after '{subject}', found '{Snippet()}'");
        }

        private IReadOnlyList<string> ReadList()
        {
            SkipSpace();
            if (_position >= text.Length || text[_position] != '[') throw Error("expected an argument list such as [a, b]");
            _position++;
            var values = new List<string>();
            while (true)
            {
                SkipSpace();
                if (_position < text.Length && text[_position] == ']' && values.Count == 0) throw Error("an argument list needs at least one value");
                values.Add(ReadListItem());
                SkipSpace();
                if (_position >= text.Length) throw Error("argument list is never closed with ']'");
                if (text[_position] == ']')
                {
                    _position++;
                    return values;
                }
                if (text[_position] != ',') throw Error($"expected ',' or ']' in the argument list, found '{Snippet()}'");
                _position++;
            }
        }

        private string ReadListItem()
        {
            if (_position < text.Length && text[_position] is '\'' or '"') return ReadQuoted();
            var start = _position;
            var value = ReadWhile(c => !char.IsWhiteSpace(c) && c is not (',' or ']' or '[' or '(' or ')'));
            if (value.Length == 0) throw Error($"expected a value in the argument list, found '{Snippet()}'", start);
            return value;
        }

        /// <summary>
        /// A quoted literal, or an unquoted run that ends at white space, at a ')' that closes an
        /// enclosing group, or at '&amp;&amp;'/'||'; parentheses and brackets inside it must balance,
        /// so regular expressions like <c>(a|b)-[0-9]+</c> need no quotes.
        /// </summary>
        private string ReadLiteral()
        {
            SkipSpace();
            if (_position >= text.Length) throw Error("expected an argument");
            if (text[_position] is '\'' or '"') return ReadQuoted();
            var start = _position;
            var depth = 0;
            for (; _position < text.Length; _position++)
            {
                var c = text[_position];
                if (char.IsWhiteSpace(c) && depth == 0) break;
                if (c is '(' or '[') depth++;
                else if (c is ')' or ']')
                {
                    if (depth == 0) break;
                    depth--;
                }
                else if (depth == 0 && c is '&' or '|' && _position + 1 < text.Length && text[_position + 1] == c) break;
            }
            if (_position == start) throw Error($"expected an argument, found '{Snippet()}'", start);
            return text[start.._position];
        }

        private string ReadQuoted()
        {
            var quote = text[_position];
            var open = _position++;
            var value = new StringBuilder();
            for (; _position < text.Length; _position++)
            {
                var c = text[_position];
                if (c == quote)
                {
                    _position++;
                    return value.ToString();
                }
                // Only the quote and the backslash itself are escapes: "\d" stays "\d" for patterns.
                if (c == '\\' && _position + 1 < text.Length && (text[_position + 1] == quote || text[_position + 1] == '\\'))
                    c = text[++_position];
                value.Append(c);
            }
            throw Error($"the quote at character {open + 1} is never closed", open);
        }

        private Comparison Build(Subject subject, string? attributeName, Op op, bool negated, IReadOnlyList<string> values, string source, int at)
        {
            var argument = values.Count > 0 ? values[0] : "";
            switch (subject)
            {
                case Subject.RunningTasksCount:
                    if (!long.TryParse(argument, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number))
                        throw Error($"runningTasksCount compares with a whole number, not '{argument}'", at);
                    return new Comparison { Kind = subject, Negated = negated, Operator = op, Text = source, Values = values, Number = number };

                case Subject.AgentVersion:
                    if (!TryParseVersion(argument, out var version))
                        throw Error($"agentVersion compares with a version such as 1.14.5, not '{argument}'", at);
                    return new Comparison { Kind = subject, Negated = negated, Operator = op, Text = source, Values = values, AgentVersion = version };

                case Subject.RegisteredAt:
                    if (!DateTimeOffset.TryParseExact(argument, DateFormats, CultureInfo.InvariantCulture,
                            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time))
                        throw Error($"registeredAt compares with a date such as 2018-06-18 or 2018-06-18T22:28:28Z, not '{argument}'", at);
                    return new Comparison { Kind = subject, Negated = negated, Operator = op, Text = source, Values = values, Time = time, IsDateOnly = argument.Length == 10 };

                case Subject.AgentConnected when op == Op.Equals:
                    if (!bool.TryParse(argument, out var flag))
                        throw Error($"agentConnected compares with true or false, not '{argument}'", at);
                    return new Comparison { Kind = subject, Negated = negated, Operator = op, Text = source, Values = values, Flag = flag };
            }

            Regex? pattern = null;
            if (op == Op.Matches)
            {
                try
                {
                    pattern = Comparison.CompileRegex(argument);
                }
                catch (ArgumentException e)
                {
                    throw Error($"'{argument}' is not a valid regular expression ({e.Message})", at);
                }
            }
            return new Comparison { Kind = subject, Negated = negated, AttributeName = attributeName, Operator = op, Text = source, Values = values, Pattern = pattern };
        }

        private string ReadWhile(Func<char, bool> predicate)
        {
            var start = _position;
            while (_position < text.Length && predicate(text[_position])) _position++;
            return text[start.._position];
        }

        private void SkipSpace()
        {
            while (_position < text.Length && char.IsWhiteSpace(text[_position])) _position++;
        }

        private static bool IsWordChar(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

        private string Snippet()
        {
            if (_position >= text.Length) return "the end";
            var end = _position;
            while (end < text.Length && end - _position < 20 && !char.IsWhiteSpace(text[end])) end++;
            return end == _position ? text[_position].ToString() : text[_position..end];
        }

        private InvalidParameterException Error(string problem, int? at = null) => new(Message(problem, at ?? _position));

        private string Message(string problem, int at) => $"Invalid cluster query expression '{text}': {problem} (at character {at + 1}).";
    }
}
