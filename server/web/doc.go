// Package web holds the browser UI's assets — page templates, one
// stylesheet, one script — embedded in the binary, and the pure helpers
// the pages render with: number and time formatting, and SVG charts of
// analysis measurements. It knows nothing of the store or of HTTP
// routes; package server builds each page's data and renders it here.
//
// Pages are complete without JavaScript (read, and act through a confirm
// page); app.js adds live updates over one Server-Sent Events stream per
// tab, confirm dialogs and log following.
package web
