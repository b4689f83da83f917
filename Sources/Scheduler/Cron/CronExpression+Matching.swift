extension CronExpression {
    /// The first wall-clock time strictly after `local` (seconds since 1970, read as
    /// wall-clock time) that matches every field; nil when none does within 400 years.
    func nextLocalMatch(after local: Int64) -> Int64? {
        var c = CivilTime(seconds: local + 1)
        let lastYear = c.year + 400
        while c.year <= lastYear {
            if months & (1 << UInt16(c.month)) == 0 {
                if let month = Self.nextBit(UInt64(months), from: c.month + 1) {
                    c = CivilTime(year: c.year, month: month, day: 1)
                } else {
                    c = CivilTime(year: c.year + 1, month: 1, day: 1)
                }
                continue
            }
            if !dayMatches(c) {
                advanceDay(&c)
                continue
            }
            if hours & (1 << UInt32(c.hour)) == 0 {
                guard let hour = Self.nextBit(UInt64(hours), from: c.hour + 1) else {
                    nextDay(&c)
                    continue
                }
                c.hour = hour
                c.minute = 0
                c.second = 0
            }
            if minutes & (1 << UInt64(c.minute)) == 0 {
                guard let minute = Self.nextBit(minutes, from: c.minute + 1) else {
                    nextHour(&c)
                    continue
                }
                c.minute = minute
                c.second = 0
            }
            if seconds & (1 << UInt64(c.second)) == 0 {
                guard let second = Self.nextBit(seconds, from: c.second + 1) else {
                    nextMinute(&c)
                    continue
                }
                c.second = second
            }
            return c.seconds
        }
        return nil
    }

    /// Vixie/cronie: with both day fields restricted, either may match; otherwise both
    /// must (an unrestricted field matches every day anyway, unless it is `*/n`).
    @inline(__always)
    func dayMatches(_ c: CivilTime) -> Bool {
        let dom = daysOfMonth & (1 << UInt32(c.day)) != 0
        let dow = daysOfWeek & (1 << UInt8(c.weekday)) != 0
        return dayOfMonthRestricted && dayOfWeekRestricted ? (dom || dow) : (dom && dow)
    }

    /// Next day that could match: jumps straight to the next allowed day of the month
    /// when the weekday plays no part.
    @inline(__always)
    func advanceDay(_ c: inout CivilTime) {
        if daysOfWeek & 0x7F == 0x7F,
            let day = Self.nextBit(UInt64(daysOfMonth), from: c.day + 1),
            day <= CivilTime.daysInMonth(year: c.year, month: c.month)
        {
            c = CivilTime(year: c.year, month: c.month, day: day)
        } else if daysOfWeek & 0x7F == 0x7F {
            nextMonth(&c)
        } else {
            nextDay(&c)
        }
    }

    @inline(__always)
    func nextMonth(_ c: inout CivilTime) {
        c = c.month == 12 ? CivilTime(year: c.year + 1, month: 1, day: 1) : CivilTime(year: c.year, month: c.month + 1, day: 1)
    }

    @inline(__always)
    func nextDay(_ c: inout CivilTime) {
        if c.day >= CivilTime.daysInMonth(year: c.year, month: c.month) {
            nextMonth(&c)
        } else {
            c = CivilTime(year: c.year, month: c.month, day: c.day + 1)
        }
    }

    @inline(__always)
    func nextHour(_ c: inout CivilTime) {
        if c.hour == 23 {
            nextDay(&c)
        } else {
            c.hour += 1
            c.minute = 0
            c.second = 0
        }
    }

    @inline(__always)
    func nextMinute(_ c: inout CivilTime) {
        if c.minute == 59 {
            nextHour(&c)
        } else {
            c.minute += 1
            c.second = 0
        }
    }

    /// The lowest set bit at or above `position`.
    @inline(__always)
    static func nextBit(_ mask: UInt64, from position: Int) -> Int? {
        guard position < 64 else { return nil }
        let shifted = mask >> UInt64(position)
        return shifted == 0 ? nil : position + shifted.trailingZeroBitCount
    }

    /// Whether some day can ever match (rejects `0 0 30 2 *`).
    var canEverMatch: Bool {
        if dayOfMonthRestricted && dayOfWeekRestricted { return true }
        guard let firstDay = Self.nextBit(UInt64(daysOfMonth), from: 1) else { return false }
        for month in 1...12 where months & (1 << UInt16(month)) != 0 {
            if firstDay <= CivilTime.daysInMonth(year: 2024, month: month) { return true }
        }
        return false
    }
}
